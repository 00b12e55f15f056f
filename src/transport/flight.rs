//! The Arrow Flight format ([`ArrowFlight`]): batches through the official SDK's
//! `build_arrow` streams and `ingest_batch`.
//!
//! Rows get the same pre-validation as on the protobuf path: the wrapper runs the
//! encoder's size pass over every batch
//! ([`RowEncoder::measure`](crate::encode::RowEncoder::measure); no bytes are written
//! unless the debug output wants them), and rows the encoder fails (a value out of range,
//! a null in a NOT NULL column, a null list element, a record over the size limit) are
//! reported with the same reasons and never sent. The remaining rows are
//! [normalized](super::normalize) to the Arrow schema the SDK derives for the table and
//! cut into the same chunks as on the protobuf path (so each `ingest_batch` call carries
//! at most `max_request_bytes`, measured on the encoded sizes); the SDK splits larger
//! messages itself.
//!
//! Recovery, pipelining and per-row outcomes are those of the protobuf path
//! ([`delivery`](super::delivery), [`lane`](super::lane)). After a stream failure the
//! SDK may return a batch sliced to its unacknowledged suffix; it is resent as it is, and
//! if it then fails, its whole chunk is reported failed (rows may be reported failed
//! that did land, never the reverse).

use std::sync::Arc;

use arrow::array::{RecordBatch, UInt32Array};
use arrow::compute::take_record_batch;
use databricks_zerobus_ingest_sdk::{ArrowSchema, ZerobusArrowStream};

use super::chunk::plan_chunks;
use super::delivery::{fail_all, Payloads};
use super::normalize::{normalize_batch, target_schema};
use super::sdk::{Prepared, WireFormat};
use crate::encode::EncodedBatch;
use crate::error::ZerobusError;
use crate::schema::TableSchema;

/// The Arrow Flight format.
#[derive(Debug)]
pub(crate) struct ArrowFlight;

impl WireFormat for ArrowFlight {
    type Stream = ZerobusArrowStream;
    // Rows travel as the Arrow batch; the encoder only validates and sizes them.
    const NEEDS_RECORDS: bool = false;

    fn stream_format(schema: &TableSchema) -> Result<Arc<ArrowSchema>, ZerobusError> {
        Ok(Arc::new(target_schema(schema)))
    }

    /// The stream's Arrow schema, nullability included: the SDK refuses a batch whose
    /// schema differs from its stream's in any way, so two Arrow schemas with one
    /// descriptor (a NOT NULL column here, nullable there) need streams of their own.
    fn same_stream(a: &TableSchema, b: &TableSchema) -> bool {
        target_schema(a) == target_schema(b)
    }

    fn prepare(
        schema: &TableSchema,
        batch: &RecordBatch,
        encoded: &Arc<EncodedBatch>,
        request_bytes: usize,
        payload_limit: usize,
    ) -> Result<Prepared<ZerobusArrowStream>, ZerobusError> {
        let (chunks, mut failed_rows) = plan_chunks(encoded, request_bytes, payload_limit);
        // Input rows of the chunks, ascending: the rows of the normalized batch.
        let mut sent = Vec::with_capacity(chunks.iter().map(|c| c.rows.len()).sum());
        for chunk in &chunks {
            sent.extend_from_slice(&chunk.rows);
        }
        let normalized = match sendable(schema, batch, encoded.rows().start, &sent) {
            Ok(normalized) => normalized,
            Err(error) => {
                failed_rows.extend(fail_all(&sent, &error));
                return Ok(Prepared {
                    chunks: Vec::new(),
                    failed_rows,
                    payloads: Arc::new(move |_: &[usize]| unreachable_payload()),
                });
            }
        };
        let sent = Arc::new(sent);
        let payloads: Payloads<ZerobusArrowStream> =
            Arc::new(move |rows: &[usize]| rows_of(&normalized, &sent, rows));
        Ok(Prepared {
            chunks,
            failed_rows,
            payloads,
        })
    }
}

/// The rows `sent` of `batch` (whose first row is row `first_row`), normalized.
fn sendable(
    schema: &TableSchema,
    batch: &RecordBatch,
    first_row: usize,
    sent: &[usize],
) -> Result<RecordBatch, ZerobusError> {
    let rows = if sent.len() == batch.num_rows() {
        batch.clone()
    } else {
        take_record_batch(batch, &indices(sent.iter().map(|row| row - first_row)))
            .map_err(|e| ZerobusError::arrow("selecting the rows to send", e))?
    };
    normalize_batch(&rows, &Arc::new(target_schema(schema)))
}

/// The payload of input rows `rows` (ascending, all in `sent`): a zero-copy slice when
/// they are contiguous in `normalized`, else a copy of those rows.
fn rows_of(normalized: &RecordBatch, sent: &[usize], rows: &[usize]) -> RecordBatch {
    // `rows` and `sent` are ascending without repeats: if the first and the last row sit
    // `rows.len() - 1` apart in `sent`, every row between them is there too.
    if let (Some(first), Some(last)) = (rows.first(), rows.last()) {
        if let (Ok(start), Ok(end)) = (sent.binary_search(first), sent.binary_search(last)) {
            if end - start + 1 == rows.len() {
                return normalized.slice(start, rows.len());
            }
        }
    }
    let positions: Vec<usize> = rows
        .iter()
        .filter_map(|row| sent.binary_search(row).ok())
        .collect();
    match (positions.first(), positions.last()) {
        (Some(first), Some(last)) if last - first + 1 == positions.len() => {
            normalized.slice(*first, positions.len())
        }
        // Chunks and their halves are contiguous; this is only a fallback.
        _ => take_record_batch(normalized, &indices(positions.into_iter()))
            .unwrap_or_else(|_| normalized.slice(0, 0)),
    }
}

fn indices(rows: impl Iterator<Item = usize>) -> UInt32Array {
    rows.map(|row| u32::try_from(row).unwrap_or(u32::MAX))
        .collect()
}

/// Never called: a batch that could not be normalized has no chunks.
fn unreachable_payload() -> RecordBatch {
    RecordBatch::new_empty(Arc::new(ArrowSchema::empty()))
}
