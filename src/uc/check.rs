//! Checking a batch against the table's Unity Catalog columns, and the lossless casts.

use std::sync::Arc;

use arrow::array::{BooleanArray, RecordBatch};
use arrow::compute::{cast, filter_record_batch};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use databricks_zerobus_ingest_sdk::schema::UcColumn;

use super::types::column_type;
use crate::error::{ConversionErrorKind, ConversionFailure, ZerobusError};
use crate::schema::types::delta_type;
use crate::schema::DeltaType;

/// What to do with each column of one Arrow schema: the target type if a cast is
/// needed, and whether the table forbids nulls.
#[derive(Debug)]
pub(crate) struct Plan {
    table: String,
    columns: Vec<ColumnPlan>,
    /// The schema after the casts.
    schema: SchemaRef,
}

#[derive(Debug)]
struct ColumnPlan {
    name: String,
    cast: Option<DataType>,
    not_null: bool,
}

/// Rows the check took out of a batch, and how to map the remaining rows back.
#[derive(Debug, Default)]
pub(crate) struct CheckedRows {
    /// Original index of every row of the checked batch; `None` = all rows kept.
    kept: Option<Vec<usize>>,
    rejected: Vec<(usize, ZerobusError)>,
}

impl CheckedRows {
    /// `failed` (indices of the checked batch) in original row indices, also in their
    /// conversion failures' `row` ([`ZerobusError::at_row`]), plus the rows the check
    /// rejected, in row order.
    pub(crate) fn restore(
        self,
        mut failed: Vec<(usize, ZerobusError)>,
    ) -> Vec<(usize, ZerobusError)> {
        if let Some(kept) = &self.kept {
            failed = failed
                .into_iter()
                .map(|(row, error)| (kept[row], error.at_row(kept[row])))
                .collect();
        }
        failed.extend(self.rejected);
        failed.sort_by_key(|(row, _)| *row);
        failed
    }
}

fn mismatch(message: String) -> ZerobusError {
    ZerobusError::conversion(ConversionErrorKind::SchemaMismatch, message)
}

impl Plan {
    /// Checks `schema` against the table's `columns`: the same columns (names compared
    /// ignoring case) in the same order, so that field number = position + 1, with
    /// types that match or widen without loss.
    ///
    /// # Errors
    /// A `SchemaMismatch` conversion error naming every column at fault.
    pub(crate) fn new(
        table: &str,
        columns: &[UcColumn],
        schema: &Schema,
    ) -> Result<Self, ZerobusError> {
        let mut uc: Vec<&UcColumn> = columns.iter().collect();
        uc.sort_by_key(|c| c.position);
        let find = |name: &str| uc.iter().find(|c| c.name.eq_ignore_ascii_case(name));
        let missing: Vec<&str> = uc
            .iter()
            .filter(|c| {
                schema
                    .fields()
                    .iter()
                    .all(|f| !f.name().eq_ignore_ascii_case(&c.name))
            })
            .map(|c| c.name.as_str())
            .collect();
        let extra: Vec<&str> = schema
            .fields()
            .iter()
            .filter(|f| find(f.name()).is_none())
            .map(|f| f.name().as_str())
            .collect();
        let mut problems = Vec::new();
        if !missing.is_empty() {
            problems.push(format!("missing columns {missing:?} (the table has them)"));
        }
        if !extra.is_empty() {
            problems.push(format!(
                "extra columns {extra:?} (the table has no such columns)"
            ));
        }
        if !problems.is_empty() {
            return Err(mismatch(format!(
                "batch does not match table {table}: {}",
                problems.join("; ")
            )));
        }
        let mut plans = Vec::with_capacity(uc.len());
        let mut fields = Vec::with_capacity(uc.len());
        for (index, (field, column)) in schema.fields().iter().zip(&uc).enumerate() {
            if !field.name().eq_ignore_ascii_case(&column.name) {
                let wanted = find(field.name()).map_or(0, |c| c.position);
                problems.push(format!(
                    "column '{}' is column {} of the batch (field number {}) but position {wanted} \
                     of the table (field number {})",
                    field.name(),
                    index,
                    index + 1,
                    wanted + 1
                ));
                continue;
            }
            match plan_type(field, column) {
                Ok(target) => {
                    let data_type = target.clone().unwrap_or_else(|| field.data_type().clone());
                    fields.push(Field::new(field.name(), data_type, field.is_nullable()));
                    plans.push(ColumnPlan {
                        name: field.name().clone(),
                        cast: target,
                        not_null: !column.nullable,
                    });
                }
                Err(problem) => problems.push(problem),
            }
        }
        if !problems.is_empty() {
            let order: Vec<&str> = uc.iter().map(|c| c.name.as_str()).collect();
            return Err(mismatch(format!(
                "batch does not match table {table} (columns in table order: {order:?}): {}",
                problems.join("; ")
            )));
        }
        Ok(Self {
            table: table.to_string(),
            columns: plans,
            schema: Arc::new(Schema::new(fields)),
        })
    }

    /// Casts the columns that need it and takes out rows with a null in a NOT NULL
    /// column (each becomes a per-row `NullInNonNullableColumn` error naming the column).
    pub(crate) fn apply(
        &self,
        batch: RecordBatch,
    ) -> Result<(RecordBatch, CheckedRows), ZerobusError> {
        let mut columns = Vec::with_capacity(batch.num_columns());
        for (plan, column) in self.columns.iter().zip(batch.columns()) {
            columns.push(match &plan.cast {
                Some(target) => cast(column, target).map_err(|e| {
                    mismatch(format!("column '{}': cast to {target}: {e}", plan.name))
                })?,
                None => column.clone(),
            });
        }
        let batch = RecordBatch::try_new(self.schema.clone(), columns)
            .map_err(|e| mismatch(format!("checked batch for table {}: {e}", self.table)))?;
        let mut keep = vec![true; batch.num_rows()];
        let mut rejected = Vec::new();
        for (plan, column) in self.columns.iter().zip(batch.columns()) {
            if !plan.not_null || column.null_count() == 0 {
                continue;
            }
            for (row, kept) in keep.iter_mut().enumerate() {
                if *kept && column.is_null(row) {
                    *kept = false;
                    let failure = ConversionFailure::new(
                        ConversionErrorKind::NullInNonNullableColumn,
                        format!(
                            "column '{}' is NOT NULL in table {} but the row holds a null",
                            plan.name, self.table
                        ),
                    )
                    .with_column(plan.name.clone())
                    .with_row(row);
                    rejected.push((row, ZerobusError::ConversionError(failure)));
                }
            }
        }
        if rejected.is_empty() {
            return Ok((batch, CheckedRows::default()));
        }
        let kept: Vec<usize> = (0..keep.len()).filter(|row| keep[*row]).collect();
        let batch = filter_record_batch(&batch, &BooleanArray::from(keep))
            .map_err(|e| mismatch(format!("checked batch for table {}: {e}", self.table)))?;
        Ok((
            batch,
            CheckedRows {
                kept: Some(kept),
                rejected,
            },
        ))
    }
}

/// `None` if `field` can be sent as is, the Arrow type to cast it to if that is lossless,
/// or the problem.
fn plan_type(field: &Field, column: &UcColumn) -> Result<Option<DataType>, String> {
    let name = field.name();
    let want = column_type(column).map_err(|e| format!("column '{name}': {e}"))?;
    let have = delta_type(field.data_type(), name, 0).map_err(|e| e.to_string())?;
    if same_type(&have, &want) {
        return Ok(None);
    }
    widening(&have, &want).map(Some).ok_or_else(|| {
        format!(
            "column '{name}': the table has {}, the batch has {} ({}), which does not convert \
             without loss",
            want.sql_name(),
            field.data_type(),
            have.sql_name()
        )
    })
}

/// Equal types, ignoring nullability and the case of struct field names.
fn same_type(have: &DeltaType, want: &DeltaType) -> bool {
    match (have, want) {
        (DeltaType::Array(a), DeltaType::Array(b)) => same_type(a, b),
        (DeltaType::Map { key: k1, value: v1 }, DeltaType::Map { key: k2, value: v2 }) => {
            same_type(k1, k2) && same_type(v1, v2)
        }
        (DeltaType::Struct(a), DeltaType::Struct(b)) => {
            a.len() == b.len()
                && a.iter().zip(b).all(|(x, y)| {
                    x.name.eq_ignore_ascii_case(&y.name) && same_type(&x.data_type, &y.data_type)
                })
        }
        _ => have == want,
    }
}

/// The Arrow type that widens a top-level `have` to `want` without loss, if any.
fn widening(have: &DeltaType, want: &DeltaType) -> Option<DataType> {
    use DeltaType as D;
    // Decimal digits before the point that each integer type needs.
    let digits = |t: &DeltaType| match t {
        D::Byte => Some(3),
        D::Short => Some(5),
        D::Int => Some(10),
        D::Long => Some(19),
        _ => None,
    };
    let rank = |t: &DeltaType| match t {
        D::Byte => Some(1),
        D::Short => Some(2),
        D::Int => Some(3),
        D::Long => Some(4),
        _ => None,
    };
    match (have, want) {
        (_, D::Short | D::Int | D::Long) if rank(have)? < rank(want)? => Some(match want {
            D::Short => DataType::Int16,
            D::Int => DataType::Int32,
            _ => DataType::Int64,
        }),
        (D::Byte | D::Short, D::Float) => Some(DataType::Float32),
        (D::Byte | D::Short | D::Int | D::Float, D::Double) => Some(DataType::Float64),
        (
            D::Decimal {
                precision: p1,
                scale: s1,
            },
            D::Decimal {
                precision: p2,
                scale: s2,
            },
        ) if s2 >= s1 && i16::from(*p2) - i16::from(*s2) >= i16::from(*p1) - i16::from(*s1) => {
            Some(DataType::Decimal128(*p2, *s2))
        }
        (_, D::Decimal { precision, scale })
            if digits(have).is_some_and(|d| i16::from(*precision) - i16::from(*scale) >= d) =>
        {
            Some(DataType::Decimal128(*precision, *scale))
        }
        _ => None,
    }
}
