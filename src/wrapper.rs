//! [`ZerobusWrapper`]: the one pipeline every entry point feeds.
//!
//! `send_batch` runs schema → encode → debug output → transport → result. The schema's
//! descriptor is built once per Arrow schema and cached; encoding never aborts a batch for
//! a bad row; every input row ends either delivered or in
//! [`TransmissionResult::failed_rows`] with its reason.
//!
//! A batch larger than one request ([`max_request_bytes`](WrapperConfiguration::max_request_bytes))
//! is encoded and queued in parts of about that size ([`RowParts`]): the first requests
//! are on their way, and being decoded by the service, while the rest is still being
//! encoded. Rows keep their numbers across parts, and the parts' outcomes make one
//! [`TransmissionResult`].

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use arrow::array::RecordBatch;

use crate::config::WrapperConfiguration;
use crate::debug::{DebugSettings, DebugWriter};
use crate::encode::{EncodedBatch, RowEncoder};
use crate::error::ZerobusError;
use crate::result::TransmissionResult;
use crate::rows::RowParts;
use crate::schema::SchemaCache;
use crate::telemetry::{BatchTrace, Telemetry};
use crate::transport::{transport_for, BoxFuture, Delivery, Transport};
use crate::uc::{CheckedRows, SchemaCheck};

/// Sends Arrow [`RecordBatch`]es to a Zerobus table.
///
/// Cheap to clone (clones share one pipeline), `Send + Sync`, and safe to call from many
/// tasks at once.
///
/// In writer-disabled mode ([`WrapperConfiguration::with_zerobus_writer_disabled`]) it
/// validates, encodes and writes the debug files, and reports per-row outcomes, with no
/// network access and no credentials:
///
/// ```
/// use std::sync::Arc;
/// use arrow::array::{Int64Array, RecordBatch, StringArray};
/// use arrow::datatypes::{DataType, Field, Schema};
/// use arrow_zerobus_sdk_wrapper::{WrapperConfiguration, ZerobusWrapper};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let dir = tempfile::tempdir()?;
/// let config = WrapperConfiguration::new("https://workspace.cloud.databricks.com", "my_table")
///     .with_debug_output(dir.path().to_path_buf())
///     .with_zerobus_writer_disabled(true);
/// let wrapper = ZerobusWrapper::new(config).await?;
///
/// let schema = Arc::new(Schema::new(vec![
///     Field::new("id", DataType::Int64, false),
///     Field::new("name", DataType::Utf8, true),
/// ]));
/// let batch = RecordBatch::try_new(schema, vec![
///     Arc::new(Int64Array::from(vec![1, 2, 3])),
///     Arc::new(StringArray::from(vec!["Alice", "Bob", "Charlie"])),
/// ])?;
/// let result = wrapper.send_batch(batch).await?;
/// assert!(result.success);
/// assert_eq!(result.successful_count, 3);
///
/// wrapper.shutdown().await?;
/// assert!(dir.path().join("zerobus/arrow/my_table.arrows").exists());
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct ZerobusWrapper {
    inner: Arc<Inner>,
}

struct Inner {
    config: WrapperConfiguration,
    schemas: SchemaCache,
    debug: Option<DebugWriter>,
    transport: Box<dyn Transport>,
    telemetry: Telemetry,
    schema_check: Option<SchemaCheck>,
    shut_down: AtomicBool,
}

/// A batch queued on the transport, waiting for its acknowledgements.
struct Queued {
    parts: Vec<QueuedPart>,
    checked: CheckedRows,
}

/// One part of a queued batch: its rows, encoded, and their delivery.
struct QueuedPart {
    delivery: Delivery,
    encoded: Arc<EncodedBatch>,
}

impl Queued {
    /// Waits for every part; the failed rows (numbered as in the batch, before the schema
    /// check restores the input's numbers), the most attempts a part needed and the bytes
    /// of the records delivered.
    async fn settle(self) -> (Vec<(usize, ZerobusError)>, u32, usize) {
        let mut failed_rows = Vec::new();
        let mut attempts = 0;
        let mut sent_bytes = 0;
        for part in self.parts {
            let report = part.delivery.await;
            let mut failed = part.encoded.row_errors();
            failed.extend(report.failed_rows);
            sent_bytes += encoded_bytes_of_successful_rows(&part.encoded, &failed);
            attempts = attempts.max(report.attempts);
            failed_rows.append(&mut failed);
        }
        (self.checked.restore(failed_rows), attempts, sent_bytes)
    }
}

impl fmt::Debug for ZerobusWrapper {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The configuration's Debug output redacts the client secret.
        f.debug_struct("ZerobusWrapper")
            .field("config", &self.inner.config)
            .field("transport", &self.inner.transport)
            .field("shut_down", &self.inner.shut_down)
            .finish_non_exhaustive()
    }
}

impl ZerobusWrapper {
    /// Validates `config` and sets up the pipeline.
    ///
    /// # Errors
    /// [`ZerobusError::ConfigurationError`] naming the option at fault;
    /// [`ZerobusError::IoError`] if the debug output directory cannot be created.
    pub async fn new(config: WrapperConfiguration) -> Result<Self, ZerobusError> {
        config.validate()?;
        let debug = debug_settings(&config)
            .map(|settings| DebugWriter::new(settings, &config.table_name))
            .transpose()?;
        let transport = transport_for(&config)?;
        tracing::debug!(
            table = %config.table_name,
            writer_disabled = config.zerobus_writer_disabled,
            debug_arrow = config.debug_arrow_active(),
            debug_protobuf = config.debug_protobuf_active(),
            "ZerobusWrapper ready"
        );
        Ok(Self {
            inner: Arc::new(Inner {
                schemas: SchemaCache::new(config.table_name.clone()),
                telemetry: Telemetry::from_config(&config),
                schema_check: SchemaCheck::from_config(&config),
                config,
                debug,
                transport,
                shut_down: AtomicBool::new(false),
            }),
        })
    }

    /// Sends `batch` and reports what became of every row, once every row is durable
    /// (acknowledged by Zerobus) or failed.
    ///
    /// Rows that cannot be encoded (a value out of range, a null list element, a record over
    /// the size limit, ...) do not stop the others: they are listed in
    /// [`TransmissionResult::failed_rows`] with the column and reason, and
    /// [`TransmissionResult::extract_failed_batch`] returns them as a quarantine batch. So are
    /// rows the network could not deliver within the retry budget (`RetryExhausted`) and
    /// rows the server refused ("rejected by the server").
    ///
    /// Concurrent calls share one stream and pipeline: a call never waits for another
    /// batch's acknowledgement.
    ///
    /// # Errors
    /// Problems that concern the whole batch rather than some rows: a schema Zerobus cannot
    /// take (unsupported type, bad column name, more than 2000 columns), a wrapper that was
    /// shut down, and in writer-disabled mode a debug file that cannot be written.
    pub async fn send_batch(&self, batch: RecordBatch) -> Result<TransmissionResult, ZerobusError> {
        Ok(self.submit_batch(batch).await?.await)
    }

    /// Sends every batch of `batches`, keeping at most `max_inflight` of them submitted but
    /// not yet acknowledged (so memory stays bounded by that window, whatever the stream's
    /// length), and returns one [`TransmissionResult`] for the whole stream: its rows are
    /// numbered from the first row of the first batch, across batches.
    ///
    /// For large inputs read batch by batch: a Parquet file, a DataFusion stream, a Python
    /// producer. Rows that fail are in the result as with [`send_batch`](Self::send_batch);
    /// an error of the stream itself, or a batch-level error, ends the send once the
    /// batches already submitted are delivered, and is returned.
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use arrow::array::{Int64Array, RecordBatch};
    /// # use arrow::datatypes::{DataType, Field, Schema};
    /// # use arrow_zerobus_sdk_wrapper::{WrapperConfiguration, ZerobusError, ZerobusWrapper};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// // Writer-disabled: encoded and written to debug files only.
    /// let dir = tempfile::tempdir()?;
    /// let config = WrapperConfiguration::new("https://example.cloud.databricks.com", "c.s.t")
    ///     .with_debug_output(dir.path().to_path_buf())
    ///     .with_zerobus_writer_disabled(true);
    /// let wrapper = ZerobusWrapper::new(config).await?;
    /// let schema = Arc::new(Schema::new(vec![Field::new("id", DataType::Int64, false)]));
    /// let batches = (0..10).map(|i| {
    ///     let ids = Int64Array::from_iter_values(i * 100..(i + 1) * 100);
    ///     Ok::<_, ZerobusError>(RecordBatch::try_new(schema.clone(), vec![Arc::new(ids)])?)
    /// });
    /// let result = wrapper.send_stream(futures::stream::iter(batches), 4).await?;
    /// assert_eq!((result.total_rows, result.successful_count), (1000, 1000));
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    /// The stream's first error, or a batch-level error of [`send_batch`](Self::send_batch);
    /// its message says how many rows were read before it.
    pub async fn send_stream<S>(
        &self,
        batches: S,
        max_inflight: usize,
    ) -> Result<TransmissionResult, ZerobusError>
    where
        S: futures::Stream<Item = Result<RecordBatch, ZerobusError>>,
    {
        self.send_stream_with_failures(batches, max_inflight, |_| {})
            .await
    }

    /// [`send_stream`](Self::send_stream), handing `failed` the failed rows of each batch
    /// (as [`TransmissionResult::extract_failed_batch`] cuts them), in stream order, as
    /// soon as the batch's outcome is known: for quarantine without keeping the input.
    ///
    /// # Errors
    /// As [`send_stream`](Self::send_stream).
    pub async fn send_stream_with_failures<S, F>(
        &self,
        batches: S,
        max_inflight: usize,
        mut failed: F,
    ) -> Result<TransmissionResult, ZerobusError>
    where
        S: futures::Stream<Item = Result<RecordBatch, ZerobusError>>,
        F: FnMut(RecordBatch),
    {
        use futures::StreamExt;

        let started = Instant::now();
        let mut totals = StreamTotals::default();
        let mut window = std::collections::VecDeque::new();
        let mut batches = std::pin::pin!(batches);
        let mut failure = None;
        while let Some(next) = batches.next().await {
            let submitted = match next {
                // Kept (a cheap clone) until its outcome is known, for its failed rows.
                Ok(batch) => self
                    .submit_batch(batch.clone())
                    .await
                    .map(|pending| (batch, pending)),
                Err(error) => Err(error),
            };
            match submitted {
                Ok((batch, pending)) => {
                    let first_row = totals.rows;
                    totals.rows += batch.num_rows();
                    window.push_back((first_row, batch, pending));
                }
                Err(error) => {
                    failure = Some(error);
                    break;
                }
            }
            if window.len() >= max_inflight.max(1) {
                if let Some((first_row, batch, pending)) = window.pop_front() {
                    totals.add(first_row, &batch, pending.await, &mut failed);
                }
            }
        }
        for (first_row, batch, pending) in window {
            totals.add(first_row, &batch, pending.await, &mut failed);
        }
        match failure {
            Some(error) => Err(error.after_rows(totals.rows)),
            None => Ok(totals.finish(started)),
        }
    }

    /// Encodes and queues `batch`, returning as soon as its records are queued on the
    /// stream; await the returned [`PendingBatch`] (now or later) for the
    /// [`TransmissionResult`]. For high-throughput callers that keep many batches in flight.
    ///
    /// Batches are queued in the order of the `submit_batch` calls. Dropping the
    /// `PendingBatch` does not cancel the delivery; [`flush`](Self::flush) waits for every
    /// batch submitted before it.
    ///
    /// # Errors
    /// As [`send_batch`](Self::send_batch).
    pub async fn submit_batch(&self, batch: RecordBatch) -> Result<PendingBatch, ZerobusError> {
        let started = Instant::now();
        let total_rows = batch.num_rows();
        let trace = self.inner.telemetry.start_batch(total_rows);
        let queued = match self.queue(batch, &trace).await {
            Ok(queued) => queued,
            Err(error) => {
                trace.fail(&error);
                return Err(error);
            }
        };
        let ack = trace.phase("ack");
        let telemetry = self.inner.telemetry.clone();
        let table = self.inner.config.table_name.clone();
        Ok(PendingBatch {
            result: Box::pin(async move {
                let (failed_rows, attempts, sent_bytes) = queued.settle().await;
                ack.end();
                let latency_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
                let result = TransmissionResult::from_row_outcomes(
                    total_rows,
                    failed_rows,
                    attempts,
                    Some(latency_ms),
                    sent_bytes,
                );
                telemetry.batch_done(&result, started.elapsed());
                trace.finish(&result);
                tracing::debug!(
                    table = %table,
                    rows = result.total_rows,
                    failed = result.failed_count,
                    bytes = result.batch_size_bytes,
                    latency_ms,
                    "batch processed"
                );
                result
            }),
        })
    }

    /// Checks (optionally), encodes, writes the debug output and queues `batch`, part by
    /// part (see the [module docs](self)).
    ///
    /// An error of a later part (a debug file that cannot be written in writer-disabled
    /// mode) leaves the parts before it queued: they are delivered, as after a dropped
    /// [`PendingBatch`]. The other errors concern the schema and come with the first part.
    async fn queue(&self, batch: RecordBatch, trace: &BatchTrace) -> Result<Queued, ZerobusError> {
        self.ensure_open()?;
        let inner = &self.inner;
        let (batch, checked) = match &inner.schema_check {
            Some(check) => check.apply(batch).await?,
            None => (batch, CheckedRows::default()),
        };
        let schema = inner.schemas.get(batch.schema_ref())?;
        self.debug_output(|debug| debug.write_arrow(&batch))?;
        let encoder = RowEncoder::new(schema.clone())
            .with_max_record_size(inner.config.max_record_size_bytes);
        // Validating and sizing is enough when neither the transport nor the debug output
        // needs the protobuf bytes (the Arrow Flight transport sends the batch itself).
        let measure_only = inner.debug.is_none() && !inner.transport.needs_records();
        // Built once per batch (not per part), and only for the protobuf debug file.
        let descriptors = inner.debug.as_ref().map(|_| schema.file_descriptor_set());
        // The first part is sized on the Arrow bytes per row (protobuf is usually no
        // larger); the next ones on the bytes the parts before them encoded into.
        let arrow_per_row = batch.get_array_memory_size() / batch.num_rows().max(1);
        let mut rows = RowParts::new(batch.num_rows(), inner.config.max_request_bytes)
            .with_first_guess(arrow_per_row);
        let mut parts = Vec::new();
        let mut encode_time = std::time::Duration::ZERO;
        while let Some(range) = rows.next() {
            let part = if range.len() == batch.num_rows() {
                batch.clone()
            } else {
                batch.slice(range.start, range.len())
            };
            let encode = trace.phase("encode");
            let encode_started = Instant::now();
            let encoder = encoder.clone().with_first_row(range.start);
            let encoded = Arc::new(if measure_only {
                encoder.measure(&part)?
            } else {
                encoder.encode(&part)?
            });
            encode_time += encode_started.elapsed();
            encode.end();
            rows.observe(part.num_rows(), encoded.encoded_len());
            if let Some(descriptors) = &descriptors {
                self.debug_output(|debug| {
                    let records = encoded.records().map(|(_, record)| record);
                    debug.write_protobuf(descriptors, records)
                })?;
            }

            let transmit = trace.phase("transmit");
            let delivery = inner.transport.submit(&schema, &part, &encoded).await?;
            transmit.end();
            parts.push(QueuedPart { delivery, encoded });
        }
        inner.telemetry.encoded(encode_time);
        Ok(Queued { parts, checked })
    }

    /// Waits until every batch submitted so far is durable (or failed) and flushes the
    /// debug files.
    pub async fn flush(&self) -> Result<(), ZerobusError> {
        self.ensure_open()?;
        self.inner.transport.flush().await?;
        if let Some(debug) = &self.inner.debug {
            debug.flush()?;
        }
        Ok(())
    }

    /// Flushes, closes the transport and finishes the debug files. Later calls to
    /// `send_batch` and `flush` fail with [`ZerobusError::ShutdownError`]; calling
    /// `shutdown` again does nothing.
    pub async fn shutdown(&self) -> Result<(), ZerobusError> {
        if self.inner.shut_down.swap(true, Ordering::SeqCst) {
            return Ok(());
        }
        let transport = self.inner.transport.shutdown().await;
        let debug = self
            .inner
            .debug
            .as_ref()
            .map_or(Ok(()), DebugWriter::shutdown);
        transport.and(debug)
    }

    /// The configuration this wrapper runs with.
    pub fn config(&self) -> &WrapperConfiguration {
        &self.inner.config
    }

    fn ensure_open(&self) -> Result<(), ZerobusError> {
        if self.inner.shut_down.load(Ordering::SeqCst) {
            return Err(ZerobusError::shutdown(format!(
                "the wrapper for table {} was shut down; create a new one",
                self.inner.config.table_name
            )));
        }
        Ok(())
    }

    /// Writes debug output with `write` (the batch as received, Arrow, or the records that
    /// encoded, protobuf), if debug output is on.
    ///
    /// In writer-disabled mode the debug files are the product, so a failure is an error;
    /// otherwise it must not stop ingestion and is logged instead.
    fn debug_output(
        &self,
        write: impl FnOnce(&DebugWriter) -> Result<(), ZerobusError>,
    ) -> Result<(), ZerobusError> {
        let Some(debug) = &self.inner.debug else {
            return Ok(());
        };
        match write(debug) {
            Err(error) if !self.inner.config.zerobus_writer_disabled => {
                tracing::warn!(%error, "debug output failed; ingestion continues");
                Ok(())
            }
            other => other,
        }
    }
}

/// The outcomes of the batches of [`ZerobusWrapper::send_stream`], rows renumbered across
/// batches.
#[derive(Default)]
struct StreamTotals {
    rows: usize,
    failed_rows: Vec<(usize, ZerobusError)>,
    attempts: u32,
    bytes: usize,
}

impl StreamTotals {
    /// Adds the result of `batch`, whose first row is stream row `first_row`, handing its
    /// failed rows to `failed`.
    fn add(
        &mut self,
        first_row: usize,
        batch: &RecordBatch,
        result: TransmissionResult,
        failed: &mut impl FnMut(RecordBatch),
    ) {
        if let Some(rows) = result.extract_failed_batch(batch) {
            failed(rows);
        }
        self.failed_rows.extend(
            result
                .failed_rows
                .into_iter()
                .map(|(row, error)| (first_row + row, error.at_row(first_row + row))),
        );
        self.attempts = self.attempts.max(result.attempts);
        self.bytes += result.batch_size_bytes;
    }

    fn finish(self, started: Instant) -> TransmissionResult {
        let millis = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        TransmissionResult::from_row_outcomes(
            self.rows,
            self.failed_rows,
            self.attempts,
            Some(millis),
            self.bytes,
        )
    }
}

/// A batch queued by [`ZerobusWrapper::submit_batch`]; resolves to its
/// [`TransmissionResult`] once every row is durable or failed.
///
/// Dropping it does not cancel the delivery.
#[must_use = "await it for the batch's per-row outcome (dropping it does not cancel the send)"]
pub struct PendingBatch {
    result: BoxFuture<'static, TransmissionResult>,
}

impl fmt::Debug for PendingBatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PendingBatch").finish_non_exhaustive()
    }
}

impl Future for PendingBatch {
    type Output = TransmissionResult;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<TransmissionResult> {
        self.result.as_mut().poll(cx)
    }
}

fn debug_settings(config: &WrapperConfiguration) -> Option<DebugSettings> {
    let arrow_enabled = config.debug_arrow_active();
    let protobuf_enabled = config.debug_protobuf_active();
    if !(arrow_enabled || protobuf_enabled) {
        return None;
    }
    Some(DebugSettings {
        // validate() guarantees a directory whenever a format is active.
        output_dir: config.debug_output_dir.clone()?,
        arrow_enabled,
        protobuf_enabled,
        max_file_size: config.debug_max_file_size,
        rotation_interval: config
            .debug_rotation_interval_secs
            .map(std::time::Duration::from_secs),
        max_files_retained: config.debug_max_files_retained,
        flush_interval: std::time::Duration::from_secs(config.debug_flush_interval_secs),
    })
}

/// Bytes of the records that were delivered: the encoded rows minus those the transport
/// reported as failed.
fn encoded_bytes_of_successful_rows(
    encoded: &EncodedBatch,
    failed_rows: &[(usize, ZerobusError)],
) -> usize {
    let undelivered: usize = failed_rows
        .iter()
        .filter_map(|(row, _)| encoded.record_len(*row))
        .sum();
    encoded.encoded_len() - undelivered
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrapper_is_send_sync_and_clone() {
        fn assert_traits<T: Send + Sync + Clone + 'static>() {}
        assert_traits::<ZerobusWrapper>();
    }

    #[tokio::test]
    async fn an_unreachable_server_fails_rows_after_the_retries() {
        let config =
            WrapperConfiguration::new("http://127.0.0.1:1", "t").with_retry_config(2, 1, 2);
        let wrapper = ZerobusWrapper::new(config)
            .await
            .expect("no connection is made yet");
        let schema = Arc::new(arrow::datatypes::Schema::new(vec![
            arrow::datatypes::Field::new("id", arrow::datatypes::DataType::Int64, false),
        ]));
        let batch = RecordBatch::try_new(
            schema,
            vec![Arc::new(arrow::array::Int64Array::from(vec![1, 2]))],
        )
        .expect("batch");
        let result = wrapper.send_batch(batch).await.expect("row-level outcome");
        assert!(!result.success);
        assert_eq!(result.failed_count, 2);
        let message = result.failed_rows[0].1.to_string();
        assert!(message.contains("after 2 attempts"), "{message}");
    }
}
