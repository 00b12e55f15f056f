//! JSON records (one object per record) → Arrow rows, with arrow-json.
//!
//! Values are read as arrow-json reads them for the table's column types:
//! - TIMESTAMP / TIMESTAMP_NTZ columns accept an integer (microseconds since the epoch)
//!   or an RFC 3339 / ISO 8601 string (`"2024-05-01T12:00:00Z"`; a string without an
//!   offset is read in the column's time zone, UTC for TIMESTAMP);
//! - DATE accepts `"YYYY-MM-DD"` or an integer (days since the epoch);
//! - DECIMAL accepts a number or a string (`"-12.30"`);
//! - BINARY accepts a string of hex digits (arrow-json's convention);
//! - STRUCT an object, ARRAY an array, MAP an object.
//!
//! A key that is not a column is rejected, and so is a missing or null value for a NOT
//! NULL column. Errors say in plain words which record, which column and what is wrong
//! (`record 3: column id is NOT NULL but the record has no value for it`), as the PROTO
//! decoder's do.

use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::{DataType, Field, Fields, Schema, SchemaRef};
use arrow_json::reader::{infer_json_schema_from_iterator, ReaderBuilder};
use serde_json::{Map, Value};
use tonic::Status;

use crate::canonical::canonical_schema;

/// Decodes JSON records (one object per record).
#[derive(Debug, Default)]
pub(crate) struct JsonDecoder;

impl JsonDecoder {
    /// The schema of a table created from the first records of a JSON stream: a local
    /// convenience (the service needs its tables created up front). Numbers become Int64
    /// or Float64, strings Utf8, booleans Boolean, arrays List, objects Struct; a key
    /// seen only with `null` becomes Utf8. Every column is nullable.
    pub(crate) fn infer_schema(&self, records: &[String]) -> Result<SchemaRef, Status> {
        let values = records.iter().enumerate().map(|(i, r)| {
            serde_json::from_str::<serde_json::Value>(r)
                .map_err(|e| arrow::error::ArrowError::JsonError(format!("record {i}: {e}")))
        });
        let inferred = infer_json_schema_from_iterator(values)
            .map_err(|e| Status::invalid_argument(format!("JSON records: {e}")))?;
        let fields: Vec<Field> = inferred
            .fields()
            .iter()
            .map(|f| {
                f.as_ref()
                    .clone()
                    .with_data_type(null_as_utf8(f.data_type()))
            })
            .collect();
        canonical_schema(&Schema::new(fields))
    }

    /// Decodes `records` into one batch of `table`'s schema.
    pub(crate) fn decode(
        &self,
        table: &SchemaRef,
        records: &[String],
    ) -> Result<RecordBatch, Status> {
        match decode_all(table, records) {
            Ok(batch) if batch.num_rows() == records.len() => Ok(batch),
            Ok(batch) => Err(Status::invalid_argument(format!(
                "{} JSON records held {} values: each record must be one JSON object",
                records.len(),
                batch.num_rows()
            ))),
            // Find the record at fault (only on the error path).
            Err(all) => Err(Status::invalid_argument(
                records
                    .iter()
                    .enumerate()
                    .find_map(|(i, r)| {
                        decode_all(table, std::slice::from_ref(r))
                            .err()
                            .map(|e| format!("record {i}: {}", explain(table.fields(), r, &e)))
                    })
                    .unwrap_or_else(|| format!("JSON records: {}", plain(&all))),
            )),
        }
    }
}

/// Why `record` does not fit a table of `fields`, in plain words. `arrow_error` is what
/// arrow-json said, used (reworded) when the record's shape looks right.
fn explain(fields: &Fields, record: &str, arrow_error: &str) -> String {
    match serde_json::from_str::<Value>(record) {
        Err(e) => format!("not valid JSON: {e}"),
        Ok(Value::Object(object)) => {
            misfit(fields, &object, None).unwrap_or_else(|| plain(arrow_error))
        }
        Ok(other) => format!("expected a JSON object, got {}", kind(&other)),
    }
}

/// The first key of `object` that is not a field, or NOT NULL field without a value, in
/// `fields` (the columns, or a struct's fields under `parent`), nested objects included.
fn misfit(fields: &Fields, object: &Map<String, Value>, parent: Option<&str>) -> Option<String> {
    let path = |name: &str| match parent {
        Some(parent) => format!("{parent}.{name}"),
        None => name.to_string(),
    };
    if let Some(key) = object.keys().find(|k| fields.find(k).is_none()) {
        return Some(match parent {
            None => format!("key {key:?} is not a column of the table"),
            Some(parent) => format!("key {key:?} is not a field of the struct column {parent}"),
        });
    }
    fields.iter().find_map(|field| {
        let column = path(field.name());
        match (object.get(field.name()), field.data_type()) {
            (None, _) if !field.is_nullable() => Some(format!(
                "column {column} is NOT NULL but the record has no value for it"
            )),
            (Some(Value::Null), _) if !field.is_nullable() => Some(format!(
                "column {column} is NOT NULL but the record's value is null"
            )),
            (Some(Value::Object(inner)), DataType::Struct(children)) => {
                misfit(children, inner, Some(&column))
            }
            _ => None,
        }
    })
}

/// An arrow-json error in plain words: `Json error: whilst decoding field 'a': whilst
/// decoding field 'b': failed to parse "x" as Int32` → `column a.b: failed to parse "x"
/// as Int32`.
fn plain(arrow_error: &str) -> String {
    const FIELD: &str = "whilst decoding field '";
    let mut rest = arrow_error
        .strip_prefix("Json error: ")
        .unwrap_or(arrow_error);
    let mut path = Vec::new();
    while let Some((name, after)) = rest.strip_prefix(FIELD).and_then(|r| r.split_once("': ")) {
        path.push(name);
        rest = after;
    }
    if let Some(key) = rest
        .strip_prefix("column '")
        .and_then(|r| r.strip_suffix("' missing from schema"))
    {
        return match path.is_empty() {
            true => format!("key {key:?} is not a column of the table"),
            false => format!(
                "key {key:?} is not a field of the struct column {}",
                path.join(".")
            ),
        };
    }
    match path.is_empty() {
        true => rest.to_string(),
        false => format!("column {}: {rest}", path.join(".")),
    }
}

/// What kind of JSON value `value` is, for messages.
fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// `records` as one batch (or an error without a record index).
fn decode_all(table: &SchemaRef, records: &[String]) -> Result<RecordBatch, String> {
    let mut decoder = ReaderBuilder::new(Arc::clone(table))
        .with_batch_size(records.len() + 1)
        .with_strict_mode(true)
        .build_decoder()
        .map_err(|e| e.to_string())?;
    for record in records {
        decode_fully(&mut decoder, record.as_bytes())?;
        decode_fully(&mut decoder, b"\n")?;
    }
    let batch = decoder.flush().map_err(|e| e.to_string())?;
    Ok(batch.unwrap_or_else(|| RecordBatch::new_empty(Arc::clone(table))))
}

fn decode_fully(decoder: &mut arrow_json::reader::Decoder, bytes: &[u8]) -> Result<(), String> {
    let read = decoder.decode(bytes).map_err(|e| e.to_string())?;
    if read == bytes.len() {
        Ok(())
    } else {
        Err("more JSON values than records".into())
    }
}

/// `data_type` with the Null type (a key seen only with `null`) replaced by Utf8.
fn null_as_utf8(data_type: &DataType) -> DataType {
    match data_type {
        DataType::Null => DataType::Utf8,
        DataType::List(item) => DataType::List(Arc::new(
            item.as_ref()
                .clone()
                .with_data_type(null_as_utf8(item.data_type())),
        )),
        DataType::Struct(fields) => DataType::Struct(
            fields
                .iter()
                .map(|f| {
                    f.as_ref()
                        .clone()
                        .with_data_type(null_as_utf8(f.data_type()))
                })
                .collect(),
        ),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> SchemaRef {
        let inner = Fields::from(vec![
            Field::new("a", DataType::Int32, false),
            Field::new("b", DataType::Utf8, true),
        ]);
        Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("extra", DataType::Int64, false),
            Field::new("name", DataType::Utf8, true),
            Field::new("inner", DataType::Struct(inner), true),
        ]))
    }

    fn error(records: &[&str]) -> String {
        let records: Vec<String> = records.iter().map(|r| r.to_string()).collect();
        let status = JsonDecoder.decode(&table(), &records).unwrap_err();
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
        status.message().to_string()
    }

    const GOOD: &str = r#"{"id":1,"extra":2}"#;

    #[test]
    fn errors_name_the_record_and_the_struct_field() {
        // Top-level columns: tests/it/hardening_names.rs, over gRPC.
        let cases = [
            (
                r#"{"id":1,"extra":2,"inner":{"b":"x"}}"#,
                "record 1: column inner.a is NOT NULL but the record has no value for it",
            ),
            (
                r#"{"id":1,"extra":2,"inner":{"a":1,"zz":1}}"#,
                r#"record 1: key "zz" is not a field of the struct column inner"#,
            ),
            (
                r#"{"id":1,"extra":2,"inner":{"a":"x"}}"#,
                r#"record 1: column inner.a: failed to parse "x" as Int32"#,
            ),
            (r#"{"id":"#, "record 1: not valid JSON"),
        ];
        for (record, expected) in cases {
            let message = error(&[GOOD, record, GOOD]);
            assert!(message.starts_with(expected), "{record}: {message}");
            assert!(!message.contains("StructArray"), "{message}");
        }
    }

    #[test]
    fn arrow_json_errors_are_reworded_with_the_column_path() {
        assert_eq!(
            plain("Json error: whilst decoding field 'r': whilst decoding field 'a': failed to parse \"a\" as Int32"),
            "column r.a: failed to parse \"a\" as Int32"
        );
        assert_eq!(
            plain("Json error: whilst decoding field 'c': column 'b' missing from schema"),
            "key \"b\" is not a field of the struct column c"
        );
        assert_eq!(plain("Json error: something else"), "something else");
    }
}
