//! Turning an input batch into the batch the wrapper sends: columns in the table's types,
//! and rows holding a null in a NOT NULL column taken out as failures naming the column.

use std::sync::Arc;

use arrow::array::{Array, BooleanArray, RecordBatch};
use arrow::compute::kernels::boolean::{not, or};
use arrow::compute::{cast, filter_record_batch};
use arrow::datatypes::SchemaRef;

use super::failures::RowFailure;
use crate::error::{ConversionErrorKind, ConversionFailure, ZerobusError};

/// An input batch split into the rows to send and the rows that failed before sending.
#[derive(Debug)]
pub(crate) struct Prepared {
    /// The rows to send, in the table's schema (`None` if none is left).
    pub(crate) send: Option<RecordBatch>,
    /// The input row of each row of `send`, when rows were taken out (else `send`'s row
    /// `i` is input row `first_row + i`).
    pub(crate) send_rows: Option<Vec<u64>>,
    /// The rows that failed (table schema, nullable) and why.
    pub(crate) rejected: Option<(RecordBatch, Vec<RowFailure>)>,
}

/// Conforms `batch` (whose first row is input row `first_row`) to `table_schema`.
///
/// # Errors
/// A column cannot be cast to the table's type (a whole-batch problem).
pub(crate) fn prepare(
    batch: &RecordBatch,
    table_schema: &SchemaRef,
    nullable_schema: &SchemaRef,
    first_row: u64,
) -> Result<Prepared, ZerobusError> {
    if batch.num_columns() != table_schema.fields().len() {
        return Err(ZerobusError::conversion(
            ConversionErrorKind::SchemaMismatch,
            format!(
                "the INSERT's input has {} columns, table has {}",
                batch.num_columns(),
                table_schema.fields().len()
            ),
        ));
    }
    let columns = batch
        .columns()
        .iter()
        .zip(table_schema.fields())
        .map(|(column, field)| {
            if column.data_type() == field.data_type() {
                Ok(Arc::clone(column))
            } else {
                cast(column, field.data_type()).map_err(|e| {
                    ZerobusError::conversion(
                        ConversionErrorKind::SchemaMismatch,
                        format!(
                            "column '{}': cannot cast {} to the table's {}: {e}",
                            field.name(),
                            column.data_type(),
                            field.data_type()
                        ),
                    )
                })
            }
        })
        .collect::<Result<Vec<_>, _>>()?;
    let conformed = RecordBatch::try_new(Arc::clone(nullable_schema), columns)?;

    let Some(null_rows) = not_null_violations(&conformed, table_schema)? else {
        let send = in_schema(&conformed, table_schema)?;
        return Ok(Prepared {
            send: Some(send).filter(|b| b.num_rows() > 0),
            send_rows: None,
            rejected: None,
        });
    };
    let rejected = filter_record_batch(&conformed, &null_rows)?;
    let failures = rejected_failures(&conformed, &null_rows, table_schema, first_row);
    let keep = not(&null_rows)?;
    let send = in_schema(&filter_record_batch(&conformed, &keep)?, table_schema)?;
    let send_rows = keep
        .iter()
        .enumerate()
        .filter(|(_, k)| k.unwrap_or(false))
        .map(|(i, _)| first_row + i as u64)
        .collect();
    Ok(Prepared {
        send: Some(send).filter(|b| b.num_rows() > 0),
        send_rows: Some(send_rows),
        rejected: Some((rejected, failures)),
    })
}

/// `batch`'s columns under `schema` (checks that NOT NULL columns hold no null).
fn in_schema(batch: &RecordBatch, schema: &SchemaRef) -> Result<RecordBatch, ZerobusError> {
    Ok(RecordBatch::try_new(
        Arc::clone(schema),
        batch.columns().to_vec(),
    )?)
}

/// A mask of the rows holding a null in a NOT NULL column, or `None` if there is none.
fn not_null_violations(
    batch: &RecordBatch,
    table_schema: &SchemaRef,
) -> Result<Option<BooleanArray>, ZerobusError> {
    let mut mask: Option<BooleanArray> = None;
    for (column, field) in batch.columns().iter().zip(table_schema.fields()) {
        if field.is_nullable() || column.logical_null_count() == 0 {
            continue;
        }
        let nulls = arrow::compute::is_null(column)?;
        mask = Some(match mask {
            Some(m) => or(&m, &nulls)?,
            None => nulls,
        });
    }
    Ok(mask)
}

/// One failure per masked row, naming the first NOT NULL column that holds a null.
fn rejected_failures(
    batch: &RecordBatch,
    mask: &BooleanArray,
    table_schema: &SchemaRef,
    first_row: u64,
) -> Vec<RowFailure> {
    (0..batch.num_rows())
        .filter(|&row| mask.value(row))
        .map(|row| {
            let column = table_schema
                .fields()
                .iter()
                .zip(batch.columns())
                .find(|(f, c)| !f.is_nullable() && c.is_null(row))
                .map_or("?", |(f, _)| f.name().as_str());
            let input_row = first_row + row as u64;
            let error = ZerobusError::ConversionError(
                ConversionFailure::new(
                    ConversionErrorKind::NullInNonNullableColumn,
                    format!("column '{column}' is declared NOT NULL but the row holds a null"),
                )
                .with_column(column)
                .with_row(input_row as usize),
            );
            RowFailure::new(input_row, &error)
        })
        .collect()
}
