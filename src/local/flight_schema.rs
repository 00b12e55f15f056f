//! Arrow schemas on the Flight path: the table a stream creates, checking a stream's
//! schema against an existing table, and casting its batches to the table's types.
//!
//! Temporary home: the type mapping and the cast give way to the shared canonical
//! mapping (`canonical.rs`) once it lands.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{new_null_array, RecordBatch, RecordBatchOptions};
use arrow::compute::{cast_with_options, CastOptions};
use arrow::datatypes::{DataType, Field, FieldRef, Schema, SchemaRef};
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

/// The `ErrorInfo` the client maps to `ZerobusError::InvalidSchema`.
const SCHEMA_REASON: &str = "SCHEMA_VALIDATION_FAILED";
const SCHEMA_DOMAIN: &str = "zerobus.databricks.com";
const SCHEMA_ERROR_CODE: &str = "8001";

/// The schema of a table created by a Flight stream: the stream's schema with the SDK's
/// Arrow types replaced by the table's canonical ones.
pub(crate) fn canonical_schema(schema: &Schema) -> SchemaRef {
    Arc::new(Schema::new(
        schema
            .fields()
            .iter()
            .map(canonical_field)
            .collect::<Vec<_>>(),
    ))
}

fn canonical_field(field: &FieldRef) -> Field {
    Field::new(
        field.name(),
        canonical_type(field.data_type()),
        field.is_nullable(),
    )
}

fn canonical_type(data_type: &DataType) -> DataType {
    match data_type {
        DataType::LargeUtf8 | DataType::Utf8View => DataType::Utf8,
        DataType::LargeBinary | DataType::BinaryView => DataType::Binary,
        DataType::List(item) | DataType::LargeList(item) => DataType::List(Arc::new(Field::new(
            "element",
            canonical_type(item.data_type()),
            item.is_nullable(),
        ))),
        DataType::Struct(fields) => DataType::Struct(
            fields
                .iter()
                .map(canonical_field)
                .collect::<Vec<_>>()
                .into(),
        ),
        DataType::Map(entries, sorted) => match entries.data_type() {
            DataType::Struct(kv) if kv.len() == 2 => {
                let key = Field::new("key", canonical_type(kv[0].data_type()), false);
                let value = Field::new(
                    "value",
                    canonical_type(kv[1].data_type()),
                    kv[1].is_nullable(),
                );
                let entries = DataType::Struct(vec![key, value].into());
                DataType::Map(Arc::new(Field::new("key_value", entries, false)), *sorted)
            }
            _ => data_type.clone(),
        },
        other => other.clone(),
    }
}

/// Whether a stream column of type `from` can land in a table column of type `to`: the
/// same type up to the SDK's wire choices (large strings and binaries, list and map
/// field names) and decimals sent as strings.
fn compatible(from: &DataType, to: &DataType) -> bool {
    use DataType as T;
    match (from, to) {
        (T::Utf8 | T::LargeUtf8 | T::Utf8View, T::Utf8 | T::Decimal128(..)) => true,
        (T::Binary | T::LargeBinary | T::BinaryView, T::Binary) => true,
        (T::List(a) | T::LargeList(a), T::List(b)) => compatible(a.data_type(), b.data_type()),
        (T::Map(a, _), T::Map(b, _)) => match (a.data_type(), b.data_type()) {
            (T::Struct(a), T::Struct(b)) => {
                a.len() == b.len()
                    && a.iter()
                        .zip(b.iter())
                        .all(|(x, y)| compatible(x.data_type(), y.data_type()))
            }
            _ => false,
        },
        (T::Struct(a), T::Struct(b)) => {
            a.len() == b.len()
                && a.iter()
                    .zip(b.iter())
                    .all(|(x, y)| x.name() == y.name() && compatible(x.data_type(), y.data_type()))
        }
        _ => from == to,
    }
}

/// Checks a stream's schema against its table as the service does; the failure carries
/// the `ErrorInfo` the client turns into `ZerobusError::InvalidSchema`.
pub(crate) fn check_schema(stream: &Schema, table: &Schema) -> Result<(), Status> {
    let mut problems: Vec<(&str, String)> = Vec::new();
    let mut last_position = None;
    for field in stream.fields() {
        let name = field.name();
        let Ok(position) = table.index_of(name) else {
            problems.push((
                "FIELD_NOT_IN_TABLE",
                format!("column {name} is not in the table"),
            ));
            continue;
        };
        let column = table.field(position);
        if !compatible(field.data_type(), column.data_type()) {
            problems.push((
                "TYPE_INCOMPATIBLE",
                format!(
                    "column {name}: the stream sends {} but the table has {}",
                    field.data_type(),
                    column.data_type()
                ),
            ));
        }
        if last_position.is_some_and(|last| position < last) {
            problems.push((
                "FIELD_OUT_OF_ORDER",
                format!("column {name} comes before a column that precedes it in the table"),
            ));
        }
        last_position = last_position.max(Some(position));
    }
    for column in table.fields() {
        if !column.is_nullable() && stream.field_with_name(column.name()).is_err() {
            problems.push((
                "MISSING_REQUIRED_COLUMN",
                format!("required column {} is missing", column.name()),
            ));
        }
    }
    if problems.is_empty() {
        return Ok(());
    }
    let mut causes: Vec<&str> = Vec::new();
    for (cause, _) in &problems {
        if !causes.contains(cause) {
            causes.push(cause);
        }
    }
    let message = problems
        .iter()
        .map(|(_, text)| text.as_str())
        .collect::<Vec<_>>()
        .join("; ");
    let details = ErrorDetails::with_error_info(
        SCHEMA_REASON,
        SCHEMA_DOMAIN,
        HashMap::from([
            ("causes".to_string(), causes.join(",")),
            ("error_code".to_string(), SCHEMA_ERROR_CODE.to_string()),
        ]),
    );
    Err(Status::with_error_details(
        Code::InvalidArgument,
        format!("the Arrow schema does not match the table: {message}"),
        details,
    ))
}

/// Casts a batch of the stream's schema to the table's: columns by name, columns the
/// stream does not send (nullable, [`check_schema`] made sure) as nulls.
pub(crate) fn conform(batch: &RecordBatch, table: &SchemaRef) -> Result<RecordBatch, Status> {
    let options = CastOptions {
        safe: false,
        ..CastOptions::default()
    };
    let columns = table
        .fields()
        .iter()
        .map(|field| match batch.column_by_name(field.name()) {
            Some(column) => cast_with_options(column, field.data_type(), &options)
                .map_err(|e| Status::invalid_argument(format!("column {}: {e}", field.name()))),
            None => Ok(new_null_array(field.data_type(), batch.num_rows())),
        })
        .collect::<Result<Vec<_>, _>>()?;
    let options = RecordBatchOptions::new().with_row_count(Some(batch.num_rows()));
    RecordBatch::try_new_with_options(Arc::clone(table), columns, &options)
        .map_err(|e| Status::invalid_argument(format!("batch does not fit the table: {e}")))
}

#[cfg(test)]
mod tests {
    use arrow::array::Array;

    use super::*;

    /// The SDK's Arrow types for STRING, DECIMAL, ARRAY<INT> and MAP<STRING, BIGINT>.
    fn sdk_schema() -> Schema {
        let entries = vec![
            Field::new("keys", DataType::LargeUtf8, false),
            Field::new("values", DataType::Int64, true),
        ];
        Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("name", DataType::LargeUtf8, true),
            Field::new("amount", DataType::LargeUtf8, true),
            Field::new("tags", DataType::new_list(DataType::Int32, true), true),
            Field::new(
                "attrs",
                DataType::Map(
                    Arc::new(Field::new(
                        "entries",
                        DataType::Struct(entries.into()),
                        false,
                    )),
                    false,
                ),
                true,
            ),
        ])
    }

    fn causes(status: &Status) -> String {
        let info = status.get_details_error_info().expect("an ErrorInfo");
        assert_eq!(
            (info.reason.as_str(), info.domain.as_str()),
            (SCHEMA_REASON, SCHEMA_DOMAIN)
        );
        assert_eq!(info.metadata["error_code"], SCHEMA_ERROR_CODE);
        info.metadata["causes"].clone()
    }

    #[test]
    fn a_table_created_from_the_sdk_schema_has_canonical_types_and_accepts_it() {
        let sdk = sdk_schema();
        let table = canonical_schema(&sdk);
        assert_eq!(table.field(1).data_type(), &DataType::Utf8);
        let DataType::List(item) = table.field(3).data_type() else {
            panic!("tags is a list")
        };
        assert_eq!(item.name(), "element");
        let DataType::Map(entries, _) = table.field(4).data_type() else {
            panic!("attrs is a map")
        };
        assert_eq!(entries.name(), "key_value");
        check_schema(&sdk, &table).unwrap();
    }

    #[test]
    fn decimals_sent_as_text_fit_a_decimal_column() {
        let mut fields: Vec<Field> = canonical_schema(&sdk_schema())
            .fields()
            .iter()
            .map(|f| f.as_ref().clone())
            .collect();
        fields[2] = Field::new("amount", DataType::Decimal128(10, 2), true);
        check_schema(&sdk_schema(), &Schema::new(fields)).unwrap();
    }

    #[test]
    fn mismatches_name_their_causes() {
        let table = Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("name", DataType::Utf8, true),
        ]);
        let stream = Schema::new(vec![
            Field::new("name", DataType::Int32, true),
            Field::new("id", DataType::Int64, false),
            Field::new("other", DataType::Utf8, true),
        ]);
        let status = check_schema(&stream, &table).unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument);
        assert_eq!(
            causes(&status),
            "TYPE_INCOMPATIBLE,FIELD_OUT_OF_ORDER,FIELD_NOT_IN_TABLE"
        );
        assert!(
            status.message().contains("column other"),
            "{}",
            status.message()
        );
        let only_name = Schema::new(vec![Field::new("name", DataType::Utf8, true)]);
        let status = check_schema(&only_name, &table).unwrap_err();
        assert_eq!(causes(&status), "MISSING_REQUIRED_COLUMN");
    }

    #[test]
    fn conform_casts_to_the_table_and_fills_absent_columns_with_nulls() {
        let table = Arc::new(Schema::new(vec![
            Field::new("amount", DataType::Decimal128(10, 2), true),
            Field::new("note", DataType::Utf8, true),
        ]));
        let stream = Arc::new(Schema::new(vec![Field::new(
            "amount",
            DataType::LargeUtf8,
            true,
        )]));
        let batch = RecordBatch::try_new(
            stream,
            vec![Arc::new(arrow::array::LargeStringArray::from(vec![
                Some("12.34"),
                None,
            ]))],
        )
        .unwrap();
        let conformed = conform(&batch, &table).unwrap();
        assert_eq!(conformed.schema(), table);
        let amounts = conformed
            .column(0)
            .as_any()
            .downcast_ref::<arrow::array::Decimal128Array>()
            .unwrap();
        assert_eq!(amounts.value(0), 1234);
        assert!(amounts.is_null(1) && conformed.column(1).null_count() == 2);

        let bad = RecordBatch::try_new(
            batch.schema(),
            vec![Arc::new(arrow::array::LargeStringArray::from(vec!["x"]))],
        )
        .unwrap();
        let status = conform(&bad, &table).unwrap_err();
        assert!(
            status.message().contains("column amount"),
            "{}",
            status.message()
        );
    }
}
