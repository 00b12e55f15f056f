//! [`ZerobusDataSink`]: the `DataSink` behind `INSERT INTO` a Zerobus table.
//!
//! `DataSinkExec` hands the sink one merged input stream. The sink fans its batches out to
//! `workers` tasks through one bounded channel (a free worker takes the next batch); each
//! worker owns a [`ZerobusWrapper`] (its own Zerobus stream), encodes on its own task (so
//! encoding uses several cores) and keeps up to `max_inflight_batches` batches submitted
//! but unacknowledged. Memory is bounded by `workers × (max_inflight_batches + 1)` batches,
//! whatever the size of the input.

use std::collections::VecDeque;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::datasource::sink::DataSink;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_plan::metrics::{
    Count, ExecutionPlanMetricsSet, MetricBuilder, MetricsSet, Time,
};
use datafusion::physical_plan::{DisplayAs, DisplayFormatType};
use futures::StreamExt;
use tokio::sync::mpsc;

use super::failures::{FailureLog, RowFailure};
use super::options::{OnError, SinkOptions};
use super::prepare::{prepare, Prepared};
use crate::config::WrapperConfiguration;
use crate::wrapper::{PendingBatch, ZerobusWrapper};

/// Streams an INSERT's rows into a Zerobus table through [`ZerobusWrapper`]s.
///
/// Returns the number of rows that landed (were acknowledged as durable). See
/// [`OnError`] for what happens to the others.
pub struct ZerobusDataSink {
    table_schema: SchemaRef,
    nullable_schema: SchemaRef,
    config: WrapperConfiguration,
    options: SinkOptions,
    metrics: ExecutionPlanMetricsSet,
}

impl fmt::Debug for ZerobusDataSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // WrapperConfiguration's Debug redacts the secret; say less anyway.
        f.debug_struct("ZerobusDataSink")
            .field("table", &self.config.table_name)
            .field("endpoint", &self.config.zerobus_endpoint)
            .field("transport", &self.config.transport)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl ZerobusDataSink {
    /// A sink writing rows of `table_schema` with `config` and `options`.
    pub fn new(
        table_schema: SchemaRef,
        config: WrapperConfiguration,
        options: SinkOptions,
    ) -> Self {
        Self {
            nullable_schema: nullable(&table_schema),
            table_schema,
            config,
            options,
            metrics: ExecutionPlanMetricsSet::new(),
        }
    }

    /// The table's schema as declared (with its NOT NULL columns).
    pub fn table_schema(&self) -> &SchemaRef {
        &self.table_schema
    }

    /// The wrapper configuration.
    pub fn config(&self) -> &WrapperConfiguration {
        &self.config
    }

    /// The sink options.
    pub fn sink_options(&self) -> &SinkOptions {
        &self.options
    }
}

/// `schema` with every top-level column nullable: DataFusion's own NOT NULL check (whose
/// error names the column by position only) is left to the sink, which names the column
/// and counts the row as failed.
pub(crate) fn nullable(schema: &SchemaRef) -> SchemaRef {
    let fields: Vec<_> = schema
        .fields()
        .iter()
        .map(|f| f.as_ref().clone().with_nullable(true))
        .collect();
    Arc::new(datafusion::arrow::datatypes::Schema::new_with_metadata(
        fields,
        schema.metadata().clone(),
    ))
}

impl DisplayAs for ZerobusDataSink {
    fn fmt_as(&self, t: DisplayFormatType, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &self.config;
        match t {
            DisplayFormatType::TreeRender => write!(
                f,
                "table={}\ntransport={}\nworkers={}",
                c.table_name,
                c.transport.as_str(),
                self.options.workers
            ),
            _ => write!(
                f,
                "ZerobusSink: table={}, transport={}, workers={}, max_inflight_batches={}, \
                 on_error={}",
                c.table_name,
                c.transport.as_str(),
                self.options.workers,
                self.options.max_inflight_batches,
                self.options.on_error.as_str()
            ),
        }
    }
}

/// The sink's DataFusion metrics, shared by its workers.
#[derive(Debug, Clone)]
struct SinkMetrics {
    rows_written: Count,
    bytes_written: Count,
    failed_rows: Count,
    elapsed_compute: Time,
}

impl SinkMetrics {
    fn new(set: &ExecutionPlanMetricsSet) -> Self {
        Self {
            rows_written: MetricBuilder::new(set).global_counter("rows_written"),
            bytes_written: MetricBuilder::new(set).global_counter("bytes_written"),
            failed_rows: MetricBuilder::new(set).global_counter("failed_rows"),
            elapsed_compute: MetricBuilder::new(set).elapsed_compute(0),
        }
    }
}

/// What the workers share.
struct Shared {
    table_schema: SchemaRef,
    nullable_schema: SchemaRef,
    max_inflight: usize,
    metrics: SinkMetrics,
    failures: Mutex<FailureLog>,
    /// Set by a worker that hit a whole-INSERT error: stop reading the input.
    abort: AtomicBool,
}

/// A batch and the input row of its first row.
type Job = (u64, RecordBatch);

#[async_trait]
impl DataSink for ZerobusDataSink {
    fn metrics(&self) -> Option<MetricsSet> {
        Some(self.metrics.clone_inner())
    }

    fn schema(&self) -> &SchemaRef {
        &self.nullable_schema
    }

    async fn write_all(
        &self,
        mut data: SendableRecordBatchStream,
        _context: &Arc<TaskContext>,
    ) -> Result<u64> {
        let quarantine_dir = match &self.options.on_error {
            OnError::Quarantine(dir) => Some(dir.as_path()),
            OnError::Fail => None,
        };
        let shared = Arc::new(Shared {
            table_schema: Arc::clone(&self.table_schema),
            nullable_schema: Arc::clone(&self.nullable_schema),
            max_inflight: self.options.max_inflight_batches,
            metrics: SinkMetrics::new(&self.metrics),
            failures: Mutex::new(FailureLog::new(
                &self.config.table_name,
                quarantine_dir,
                &self.table_schema,
            )),
            abort: AtomicBool::new(false),
        });
        let (sender, receiver) = mpsc::channel::<Job>(self.options.workers);
        let receiver = Arc::new(tokio::sync::Mutex::new(receiver));
        let mut workers = Vec::with_capacity(self.options.workers);
        for _ in 0..self.options.workers {
            let wrapper = ZerobusWrapper::new(self.config.clone())
                .await
                .map_err(DataFusionError::from)?;
            workers.push(tokio::spawn(worker(
                wrapper,
                Arc::clone(&receiver),
                Arc::clone(&shared),
            )));
        }

        let mut next_row = 0u64;
        let mut input_error = None;
        while let Some(batch) = data.next().await {
            if shared.abort.load(Ordering::SeqCst) {
                break;
            }
            match batch {
                Ok(batch) if batch.num_rows() == 0 => {}
                Ok(batch) => {
                    let rows = batch.num_rows() as u64;
                    if sender.send((next_row, batch)).await.is_err() {
                        break; // every worker stopped; their errors are collected below
                    }
                    next_row += rows;
                }
                Err(e) => {
                    input_error = Some(e);
                    break;
                }
            }
        }
        drop(sender);

        let mut landed = 0u64;
        let mut worker_error = None;
        for handle in workers {
            match handle.await {
                Ok(Ok(rows)) => landed += rows,
                Ok(Err(e)) => {
                    worker_error.get_or_insert(e);
                }
                Err(join) => {
                    worker_error.get_or_insert(DataFusionError::Execution(format!(
                        "Zerobus sink worker failed: {join}"
                    )));
                }
            }
        }
        finish(
            &shared,
            &self.options.on_error,
            landed,
            input_error.or(worker_error),
        )
    }
}

/// The INSERT's outcome once every worker is done.
fn finish(
    shared: &Shared,
    on_error: &OnError,
    landed: u64,
    error: Option<DataFusionError>,
) -> Result<u64> {
    let mut log = shared.failures.lock().unwrap_or_else(|p| p.into_inner());
    let quarantined = log.finish().map_err(DataFusionError::from)?;
    let table = log.table().to_string();
    if let Some(error) = error {
        return Err(error.context(format!(
            "INSERT into Zerobus table {table} stopped; {landed} row(s) landed before"
        )));
    }
    if log.total() == 0 {
        return Ok(landed);
    }
    match (on_error, quarantined) {
        (OnError::Quarantine(_), Some(path)) => {
            tracing::warn!(
                table = %table,
                failed = log.total(),
                quarantine = %path.display(),
                "{}; the rows were quarantined",
                log.summary()
            );
            Ok(landed)
        }
        _ => Err(DataFusionError::Execution(format!(
            "INSERT into Zerobus table {table}: {landed} row(s) landed, {}",
            log.summary()
        ))),
    }
}

/// One worker: takes batches from the shared channel and keeps them in flight on its own
/// wrapper; returns the number of rows that landed.
async fn worker(
    wrapper: ZerobusWrapper,
    jobs: Arc<tokio::sync::Mutex<mpsc::Receiver<Job>>>,
    shared: Arc<Shared>,
) -> Result<u64> {
    let mut inflight: VecDeque<InFlight> = VecDeque::new();
    let mut landed = 0u64;
    let outcome = async {
        loop {
            let job = jobs.lock().await.recv().await;
            let Some((first_row, batch)) = job else {
                break;
            };
            if let Some(sent) = submit(&wrapper, &shared, first_row, &batch).await? {
                inflight.push_back(sent);
            }
            while inflight.len() >= shared.max_inflight {
                if let Some(sent) = inflight.pop_front() {
                    landed += settle(&shared, sent).await?;
                }
            }
        }
        Ok::<(), DataFusionError>(())
    }
    .await;
    if outcome.is_err() {
        shared.abort.store(true, Ordering::SeqCst);
    }
    // Good rows already submitted are awaited (durable or failed) even after an error.
    let mut settle_error = None;
    while let Some(sent) = inflight.pop_front() {
        match settle(&shared, sent).await {
            Ok(rows) => landed += rows,
            Err(e) => {
                settle_error.get_or_insert(e);
            }
        }
    }
    let shutdown = wrapper.shutdown().await.map_err(DataFusionError::from);
    outcome?;
    if let Some(e) = settle_error {
        return Err(e);
    }
    shutdown?;
    Ok(landed)
}

/// A batch submitted to the wrapper and not yet settled.
struct InFlight {
    batch: RecordBatch,
    first_row: u64,
    input_rows: Option<Vec<u64>>,
    pending: PendingBatch,
}

/// Prepares and submits one batch; rows rejected before sending are logged.
async fn submit(
    wrapper: &ZerobusWrapper,
    shared: &Shared,
    first_row: u64,
    batch: &RecordBatch,
) -> Result<Option<InFlight>> {
    let timer = shared.metrics.elapsed_compute.timer();
    let Prepared {
        send,
        send_rows,
        rejected,
    } = prepare(
        batch,
        &shared.table_schema,
        &shared.nullable_schema,
        first_row,
    )
    .map_err(DataFusionError::from)?;
    if let Some((rows, failures)) = rejected {
        record_failures(shared, &rows, &failures)?;
    }
    let Some(send) = send else {
        return Ok(None);
    };
    let pending = wrapper
        .submit_batch(send.clone())
        .await
        .map_err(DataFusionError::from)?;
    timer.done();
    Ok(Some(InFlight {
        batch: send,
        first_row,
        input_rows: send_rows,
        pending,
    }))
}

/// Awaits a submitted batch; returns its landed rows and logs its failed ones.
async fn settle(shared: &Shared, sent: InFlight) -> Result<u64> {
    let result = sent.pending.await;
    let metrics = &shared.metrics;
    metrics.rows_written.add(result.successful_count);
    metrics.bytes_written.add(result.batch_size_bytes);
    if let Some(failed) = result.extract_failed_batch(&sent.batch) {
        let failures: Vec<RowFailure> = result
            .failed_rows
            .iter()
            .map(|(row, error)| {
                let input_row = match &sent.input_rows {
                    Some(rows) => rows[*row],
                    None => sent.first_row + *row as u64,
                };
                RowFailure::new(input_row, error)
            })
            .collect();
        record_failures(shared, &failed, &failures)?;
    }
    Ok(result.successful_count as u64)
}

fn record_failures(shared: &Shared, rows: &RecordBatch, failures: &[RowFailure]) -> Result<()> {
    shared.metrics.failed_rows.add(failures.len());
    shared
        .failures
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .record(rows, failures)
        .map_err(DataFusionError::from)
}
