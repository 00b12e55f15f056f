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
//! NULL column.

use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow_json::reader::{infer_json_schema_from_iterator, ReaderBuilder};
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
                            .map(|e| format!("record {i}: {e}"))
                    })
                    .unwrap_or(all),
            )),
        }
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
