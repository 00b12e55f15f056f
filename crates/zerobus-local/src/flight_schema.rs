//! Checking a Flight stream's Arrow schema against an existing table, as the service
//! does before it sends the ready signal.

use std::collections::HashMap;

use arrow::datatypes::{DataType, Field, Schema};
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

use super::canonical::canonical_schema;

/// The `ErrorInfo` the client maps to `ZerobusError::InvalidSchema`.
const SCHEMA_REASON: &str = "SCHEMA_VALIDATION_FAILED";
const SCHEMA_DOMAIN: &str = "zerobus.databricks.com";
const SCHEMA_ERROR_CODE: &str = "8001";

/// Whether a stream column of type `from` can land in a table column of type `to` (a
/// canonical type): `from`'s canonical type, up to nested nullability, or a decimal sent
/// as text (as the SDK sends every DECIMAL).
fn compatible(from: &DataType, to: &DataType) -> bool {
    use DataType as T;
    match (from, to) {
        (T::Utf8 | T::LargeUtf8 | T::Utf8View, T::Decimal128(..)) => true,
        (
            T::List(a)
            | T::LargeList(a)
            | T::FixedSizeList(a, _)
            | T::ListView(a)
            | T::LargeListView(a),
            T::List(b),
        ) => compatible(a.data_type(), b.data_type()),
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
        _ => canonical_type(from).is_some_and(|canonical| &canonical == to),
    }
}

/// The canonical type of a column of type `data_type`, `None` if Delta cannot store it.
fn canonical_type(data_type: &DataType) -> Option<DataType> {
    let schema = Schema::new(vec![Field::new("c", data_type.clone(), true)]);
    let canonical = canonical_schema(&schema).ok()?;
    Some(canonical.field(0).data_type().clone())
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

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
    fn the_canonical_table_of_an_sdk_schema_accepts_it() {
        let sdk = sdk_schema();
        let table = canonical_schema(&sdk).unwrap();
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
            .unwrap()
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
}
