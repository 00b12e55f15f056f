//! The Delta landing: one Delta table per Zerobus table, rows committed in groups.
//!
//! Each table has one background task that owns its [`DeltaTable`] and its
//! [`RecordBatchWriter`]. [`Sink::submit`] only enqueues; the task streams each batch into
//! the open Parquet file and commits the group (one Delta version) when its rows, its bytes
//! or its age pass the [`DeltaSettings`] thresholds. Every [`Commit`] of the group resolves
//! after the commit is written (or with the error if it failed: those rows are then not
//! acknowledged, and the client sends them again).
//!
//! The queue in front of the task is bounded in bytes: once more than
//! [`DeltaSettings::max_bytes`] wait in it (while a commit is being written, say),
//! [`Sink::ready`] holds the streams back until the task has taken them, so a table holds
//! at most about twice `max_bytes` (the queue and the open group) plus one message per
//! stream.
//!
//! Tables are plain, unpartitioned Delta tables (reader 1 / writer 2, more only if a column
//! type needs a table feature, e.g. `timestampNtz`) that DataFusion, Polars `read_delta`,
//! DuckDB or Spark read.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use arrow::array::RecordBatch;
use arrow::datatypes::{DataType, Schema, SchemaRef, TimeUnit};
use deltalake::kernel::engine::arrow_conversion::{TryFromArrow, TryIntoArrow};
use deltalake::kernel::StructType;
use deltalake::operations::create::CreateBuilder;
use deltalake::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use deltalake::protocol::SaveMode;
use deltalake::writer::{DeltaWriter, RecordBatchWriter};
use deltalake::DeltaTable;
use futures::future::BoxFuture;
use tokio::sync::{mpsc, oneshot, Notify};
use tokio::time::Instant;
use tonic::Status;

use super::{Commit, Sink};
use crate::canonical::conform;
use crate::error::LocalError;

/// The default longest wait between the first row of a group and its commit: 200 ms.
pub const DEFAULT_COMMIT_INTERVAL: Duration = Duration::from_millis(200);

/// The default row count that commits a group at once: 100 000 rows.
pub const DEFAULT_COMMIT_MAX_ROWS: usize = 100_000;

/// The default size (Arrow in-memory bytes) that commits a group at once: 64 MiB.
pub const DEFAULT_COMMIT_MAX_BYTES: usize = 64 << 20;

/// Rows read back per Parquet batch.
const READ_BATCH_ROWS: usize = 64 * 1024;

/// When a table's pending rows are committed: whichever threshold is passed first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DeltaSettings {
    /// Longest time between the first pending batch and the commit.
    pub(crate) interval: Duration,
    /// Pending rows that trigger a commit.
    pub(crate) max_rows: usize,
    /// Pending bytes (Arrow memory size of the batches) that trigger a commit; also the
    /// most bytes queued for the writer before streams are held back.
    pub(crate) max_bytes: usize,
}

impl Default for DeltaSettings {
    fn default() -> Self {
        Self {
            interval: DEFAULT_COMMIT_INTERVAL,
            max_rows: DEFAULT_COMMIT_MAX_ROWS,
            max_bytes: DEFAULT_COMMIT_MAX_BYTES,
        }
    }
}

/// Checks that every column of `schema` has a Delta type that reads back as the same
/// values, and returns the Delta schema.
///
/// # Errors
/// `INVALID_ARGUMENT` naming the first column whose type has no lossless Delta type.
pub(crate) fn delta_schema(schema: &Schema) -> Result<StructType, Status> {
    for field in schema.fields() {
        check_type(field.name(), field.data_type()).map_err(Status::invalid_argument)?;
    }
    StructType::try_from_arrow(schema)
        .map_err(|e| Status::invalid_argument(format!("no Delta schema for {schema}: {e}")))
}

/// Accepts the Arrow types a Delta table stores without loss (see [`delta_schema`]).
fn check_type(column: &str, data_type: &DataType) -> Result<(), String> {
    use DataType as T;
    match data_type {
        T::Int8 | T::Int16 | T::Int32 | T::Int64 | T::Float32 | T::Float64 | T::Boolean => Ok(()),
        T::Utf8 | T::LargeUtf8 | T::Utf8View | T::Binary | T::LargeBinary | T::BinaryView => Ok(()),
        T::Date32 | T::Timestamp(TimeUnit::Microsecond, None) => Ok(()),
        T::Timestamp(TimeUnit::Microsecond, Some(tz)) if tz.eq_ignore_ascii_case("UTC") => Ok(()),
        T::Decimal128(precision, scale) if *scale >= 0 && (*scale as u8) <= *precision => Ok(()),
        T::List(item) | T::LargeList(item) => check_type(&format!("{column}[]"), item.data_type()),
        T::Struct(fields) => fields
            .iter()
            .try_for_each(|f| check_type(&format!("{column}.{}", f.name()), f.data_type())),
        T::Map(entries, _) => match entries.data_type() {
            T::Struct(kv) if kv.len() == 2 => {
                check_type(&format!("{column}.key"), kv[0].data_type())?;
                check_type(&format!("{column}.value"), kv[1].data_type())
            }
            other => Err(format!(
                "column {column}: map entries must be a struct of key and value, not {other}"
            )),
        },
        other => Err(format!(
            "column {column}: Arrow type {other} has no lossless Delta type{}",
            hint(other)
        )),
    }
}

/// What to use instead of a type Delta cannot store as is.
fn hint(data_type: &DataType) -> &'static str {
    use DataType as T;
    match data_type {
        T::UInt8 | T::UInt16 | T::UInt32 => " (use the next wider signed integer)",
        T::UInt64 => " (use Int64 if the values fit, or Decimal128(20, 0))",
        T::Float16 => " (use Float32)",
        T::Date64 => " (use Date32)",
        T::Timestamp(TimeUnit::Microsecond, Some(_)) => " (use the time zone \"UTC\")",
        T::Timestamp(..) => " (use microseconds, time zone \"UTC\" or none)",
        T::Decimal32(..) | T::Decimal64(..) | T::Decimal256(..) => {
            " (use Decimal128 with precision <= 38)"
        }
        T::Dictionary(..) => " (use the dictionary's value type)",
        _ => "",
    }
}

/// The Arrow schema of a Delta schema, as delta-kernel reads it back.
pub(crate) fn arrow_schema(delta: &StructType) -> Result<SchemaRef, String> {
    let schema: Schema = delta.try_into_arrow().map_err(|e| e.to_string())?;
    Ok(Arc::new(schema))
}

/// An existing Delta table found under the data directory.
pub(crate) struct Found {
    /// `catalog.schema.table`, from the directory names.
    pub(crate) name: String,
    /// The table, loaded at its latest version.
    pub(crate) table: DeltaTable,
    /// Its Delta schema.
    pub(crate) schema: StructType,
}

/// Loads every Delta table at `<data_dir>/<catalog>/<schema>/<table>` (a directory with a
/// `_delta_log`); a missing `data_dir` has none.
///
/// # Errors
/// The directory cannot be listed, or a table found cannot be loaded.
pub(crate) async fn find_tables(data_dir: &Path) -> Result<Vec<Found>, LocalError> {
    let mut found = Vec::new();
    for dir in table_dirs(data_dir)? {
        let Some(name) = table_name(data_dir, &dir) else {
            continue;
        };
        let failed = |e: deltalake::DeltaTableError| LocalError::delta(&name, e);
        let url = deltalake::ensure_table_uri(dir.to_string_lossy()).map_err(failed)?;
        let table = deltalake::open_table(url).await.map_err(failed)?;
        let schema = table.snapshot().map_err(failed)?.schema().as_ref().clone();
        found.push(Found {
            name,
            table,
            schema,
        });
    }
    Ok(found)
}

/// `<c>/<s>/<t>` directories under `data_dir` that hold a `_delta_log`, sorted.
fn table_dirs(data_dir: &Path) -> Result<Vec<PathBuf>, LocalError> {
    let mut dirs = vec![data_dir.to_path_buf()];
    for _level in 0..3 {
        let mut next = Vec::new();
        for dir in &dirs {
            next.extend(subdirs(dir)?);
        }
        dirs = next;
    }
    dirs.retain(|dir| dir.join("_delta_log").is_dir());
    dirs.sort();
    Ok(dirs)
}

fn subdirs(dir: &Path) -> Result<Vec<PathBuf>, LocalError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_error(dir, e)),
    };
    let mut dirs = Vec::new();
    for entry in entries {
        let path = entry.map_err(|e| io_error(dir, e))?.path();
        if path.is_dir() {
            dirs.push(path);
        }
    }
    Ok(dirs)
}

fn io_error(path: &Path, e: std::io::Error) -> LocalError {
    LocalError::io(path, e)
}

/// `catalog.schema.table` for `<data_dir>/<catalog>/<schema>/<table>`.
fn table_name(data_dir: &Path, dir: &Path) -> Option<String> {
    let parts: Vec<&str> = dir
        .strip_prefix(data_dir)
        .ok()?
        .iter()
        .map(|p| p.to_str())
        .collect::<Option<_>>()?;
    let name = parts.join(".");
    (parts.len() == 3 && crate::names::validate_table_name(&name).is_ok()).then_some(name)
}

/// A Delta table fed by a background task; see the [module documentation](self).
pub(crate) struct DeltaSink {
    dir: PathBuf,
    schema: SchemaRef,
    tx: mpsc::UnboundedSender<Message>,
    backlog: Arc<Backlog>,
}

/// The bytes of the batches queued for a table's task and not taken yet.
#[derive(Debug)]
struct Backlog {
    bytes: AtomicUsize,
    /// More than this many bytes queued: writers wait.
    limit: usize,
    /// Notified whenever the task takes a batch.
    taken: Notify,
}

impl Backlog {
    fn new(limit: usize) -> Self {
        Self {
            bytes: AtomicUsize::new(0),
            limit,
            taken: Notify::new(),
        }
    }

    fn add(&self, bytes: usize) {
        self.bytes.fetch_add(bytes, Ordering::AcqRel);
    }

    fn take(&self, bytes: usize) {
        self.bytes.fetch_sub(bytes, Ordering::AcqRel);
        self.taken.notify_waiters();
    }

    /// Resolves once no more than the limit is queued.
    async fn room(&self) {
        loop {
            // Created before the check, so a batch taken in between still wakes it.
            let taken = self.taken.notified();
            if self.bytes.load(Ordering::Acquire) <= self.limit {
                return;
            }
            taken.await;
        }
    }
}

impl fmt::Debug for DeltaSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeltaSink").field("dir", &self.dir).finish()
    }
}

/// What a table's task is asked to do.
enum Message {
    /// Write a batch (of this many queued bytes); answer once its group is committed.
    Submit(RecordBatch, usize, oneshot::Sender<Result<(), String>>),
    /// Commit what is pending now; answer once done.
    Flush(oneshot::Sender<()>),
    /// The table as of the last commit.
    Snapshot(oneshot::Sender<Result<DeltaTable, String>>),
}

impl DeltaSink {
    /// A new Delta table `name` at `dir` with the columns of `schema` (which
    /// [`Table::read`] returns). The table is written by a task of the current tokio
    /// runtime; if creating it fails, the task logs why, calls `unusable` and fails every
    /// commit (with a message that leaves the server's paths out).
    ///
    /// # Errors
    /// `INVALID_ARGUMENT` if a column has no lossless Delta type (see [`delta_schema`]);
    /// `INTERNAL` outside a tokio runtime.
    ///
    /// [`Table::read`]: crate::catalog::Table::read
    pub(crate) fn create(
        name: &str,
        dir: PathBuf,
        schema: SchemaRef,
        settings: DeltaSettings,
        unusable: impl FnOnce() + Send + 'static,
    ) -> Result<Self, Status> {
        let delta = delta_schema(&schema)?;
        let location = dir.to_string_lossy().into_owned();
        let table_name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let open = async move {
            CreateBuilder::new()
                .with_location(location)
                .with_table_name(table_name)
                .with_columns(delta.fields().cloned())
                .with_save_mode(SaveMode::ErrorIfExists)
                .await
        };
        Self::spawn(name, dir, schema, settings, open, unusable)
    }

    /// The existing `table` `name` at `dir`, read back as `schema`.
    ///
    /// # Errors
    /// `INTERNAL` outside a tokio runtime.
    pub(crate) fn open(
        name: &str,
        dir: PathBuf,
        schema: SchemaRef,
        table: DeltaTable,
        settings: DeltaSettings,
    ) -> Result<Self, Status> {
        Self::spawn(name, dir, schema, settings, async move { Ok(table) }, || ())
    }

    fn spawn(
        name: &str,
        dir: PathBuf,
        schema: SchemaRef,
        settings: DeltaSettings,
        open: impl std::future::Future<Output = deltalake::DeltaResult<DeltaTable>> + Send + 'static,
        unusable: impl FnOnce() + Send + 'static,
    ) -> Result<Self, Status> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| {
            Status::internal("the Delta landing needs a tokio runtime to write tables")
        })?;
        let (tx, rx) = mpsc::unbounded_channel();
        let (name, label) = (name.to_string(), dir.display().to_string());
        let backlog = Arc::new(Backlog::new(settings.max_bytes));
        let task_backlog = Arc::clone(&backlog);
        runtime.spawn(async move {
            let state = match open.await {
                Ok(table) => RecordBatchWriter::for_table(&table)
                    .map(|writer| Writing { table, writer })
                    .map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            };
            let state = state.map_err(|e| {
                // The cause names the server's directories: it goes to the log only.
                tracing::warn!(table = %name, dir = %label, error = %e, "local Zerobus: Delta table unusable");
                unusable();
                format!(
                    "the Delta table for {name} could not be created or opened (the server \
                     log has the cause); send again to retry"
                )
            });
            run(state, rx, settings, &task_backlog, &label).await;
        });
        Ok(Self {
            dir,
            schema,
            tx,
            backlog,
        })
    }

    /// The table as of its last commit.
    async fn snapshot(&self) -> Result<DeltaTable, String> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(Message::Snapshot(tx))
            .map_err(|_| "the table's writer has stopped".to_string())?;
        rx.await
            .map_err(|_| "the table's writer has stopped".to_string())?
    }
}

impl Sink for DeltaSink {
    fn submit(&self, batch: RecordBatch) -> Commit {
        let (tx, rx) = oneshot::channel();
        // At least one byte: a flood of empty batches fills the queue too.
        let bytes = batch.get_array_memory_size().max(1);
        self.backlog.add(bytes);
        if let Err(mpsc::error::SendError(Message::Submit(_, bytes, tx))) =
            self.tx.send(Message::Submit(batch, bytes, tx))
        {
            self.backlog.take(bytes);
            let _ = tx.send(Err("the table's writer has stopped".into()));
        }
        rx
    }

    fn ready(&self) -> BoxFuture<'_, ()> {
        Box::pin(self.backlog.room())
    }

    fn read(&self) -> BoxFuture<'_, Result<Vec<RecordBatch>, LocalError>> {
        Box::pin(async move {
            let failed = |e: String| LocalError::delta(self.dir.display().to_string(), e);
            let table = self.snapshot().await.map_err(failed)?;
            let files: Vec<String> = table
                .get_file_uris()
                .map_err(|e| LocalError::delta(self.dir.display().to_string(), e))?
                .collect();
            let (dir, schema) = (self.dir.clone(), Arc::clone(&self.schema));
            tokio::task::spawn_blocking(move || read_files(&dir, files, &schema))
                .await
                .map_err(|e| failed(e.to_string()))?
                .map_err(failed)
        })
    }

    fn flush(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            let (tx, rx) = oneshot::channel();
            if self.tx.send(Message::Flush(tx)).is_ok() {
                let _ = rx.await;
            }
        })
    }
}

/// The open table and its writer (the window of the pending group).
struct Writing {
    table: DeltaTable,
    writer: RecordBatchWriter,
}

/// The batches written since the last commit, waiting for it.
#[derive(Default)]
struct Group {
    waiting: Vec<oneshot::Sender<Result<(), String>>>,
    rows: usize,
    bytes: usize,
    since: Option<Instant>,
}

impl Group {
    fn due(&self, settings: &DeltaSettings) -> bool {
        self.rows >= settings.max_rows
            || self.bytes >= settings.max_bytes
            || self
                .since
                .is_some_and(|since| since.elapsed() >= settings.interval)
    }

    /// Resolves every waiting commit with `result`, in submit order.
    fn resolve(&mut self, result: Result<(), String>) {
        for waiting in std::mem::take(self).waiting {
            let _ = waiting.send(result.clone());
        }
    }
}

/// The task of one table: writes batches, commits groups, answers snapshots, until every
/// [`DeltaSink`] handle is gone (then commits what is pending and stops).
async fn run(
    mut state: Result<Writing, String>,
    mut rx: mpsc::UnboundedReceiver<Message>,
    settings: DeltaSettings,
    backlog: &Backlog,
    label: &str,
) {
    let mut group = Group::default();
    loop {
        let deadline = group.since.map(|since| since + settings.interval);
        let message = tokio::select! {
            message = rx.recv() => message,
            () = sleep_until(deadline), if deadline.is_some() => {
                commit(&mut state, &mut group, label).await;
                continue;
            }
        };
        match message {
            Some(Message::Submit(batch, queued, done)) => {
                backlog.take(queued);
                let writing = match &mut state {
                    Ok(writing) => writing,
                    Err(e) => {
                        let _ = done.send(Err(e.clone()));
                        continue;
                    }
                };
                // The writer wants delta-kernel's Arrow types (list items, map entries).
                let batch = match cast_to(&batch, &writing.writer.arrow_schema()) {
                    Ok(batch) => batch,
                    Err(e) => {
                        let _ = done.send(Err(format!("rows for the Delta table: {e}")));
                        continue;
                    }
                };
                group.rows += batch.num_rows();
                group.bytes += batch.get_array_memory_size();
                group.since.get_or_insert_with(Instant::now);
                group.waiting.push(done);
                if let Err(e) = writing.writer.write(batch).await {
                    // The writer's window is lost: the whole group fails and is resent.
                    tracing::warn!(table = label, error = %e, "local Zerobus: writing a Delta table failed");
                    writing.writer.reset();
                    group.resolve(Err(logged("writing to the Delta table", &e)));
                } else if group.due(&settings) {
                    commit(&mut state, &mut group, label).await;
                }
            }
            Some(Message::Flush(done)) => {
                commit(&mut state, &mut group, label).await;
                let _ = done.send(());
            }
            Some(Message::Snapshot(done)) => {
                let _ = done.send(
                    state
                        .as_ref()
                        .map(|w| w.table.clone())
                        .map_err(Clone::clone),
                );
            }
            None => {
                commit(&mut state, &mut group, label).await;
                return;
            }
        }
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    if let Some(deadline) = deadline {
        tokio::time::sleep_until(deadline).await;
    }
}

/// Commits the pending group (one Delta version) and resolves its commits.
async fn commit(state: &mut Result<Writing, String>, group: &mut Group, label: &str) {
    if group.waiting.is_empty() {
        return;
    }
    let writing = match state {
        Ok(writing) => writing,
        Err(e) => return group.resolve(Err(e.clone())),
    };
    match writing.writer.flush_and_commit(&mut writing.table).await {
        Ok(version) => {
            tracing::info!(
                table = label,
                version,
                rows = group.rows,
                "local Zerobus: Delta commit"
            );
            group.resolve(Ok(()));
        }
        Err(e) => {
            tracing::warn!(table = label, rows = group.rows, error = %e, "local Zerobus: Delta commit failed");
            // Staged files stay staged after a failed commit: drop them, so rows that were
            // not acknowledged never land later with another group.
            writing.writer.reset();
            if let Err(reload) = writing.table.update_state().await {
                tracing::warn!(table = label, error = %reload, "local Zerobus: reloading a Delta table failed");
            }
            group.resolve(Err(logged("committing to the Delta table", &e)));
        }
    }
}

/// `<what> failed`, for the client; the error itself (which may name the server's files)
/// goes to the log.
fn logged(what: &str, error: &deltalake::DeltaTableError) -> String {
    tracing::warn!(%error, "local Zerobus: {what} failed");
    format!("{what} failed (the server log has the cause)")
}

/// Reads `files` (the table's data files) in the order they were committed, as batches
/// of `schema`.
fn read_files(
    dir: &Path,
    mut files: Vec<String>,
    schema: &SchemaRef,
) -> Result<Vec<RecordBatch>, String> {
    let order = commit_order(dir)?;
    files.sort_by_key(|file| order.get(file_name(file)).copied().unwrap_or((u64::MAX, 0)));
    let mut batches = Vec::new();
    for file in files {
        let opened = std::fs::File::open(&file).map_err(|e| format!("{file}: {e}"))?;
        let reader = ParquetRecordBatchReaderBuilder::try_new(opened)
            .and_then(|b| b.with_batch_size(READ_BATCH_ROWS).build())
            .map_err(|e| format!("{file}: {e}"))?;
        for batch in reader {
            let batch = batch.map_err(|e| format!("{file}: {e}"))?;
            batches.push(cast_to(&batch, schema).map_err(|e| format!("{file}: {e}"))?);
        }
    }
    Ok(batches)
}

fn file_name(path: &str) -> &str {
    path.rsplit(['/', '\\']).next().unwrap_or(path)
}

/// For each data file name added by a commit of the table at `dir`: (version, position
/// in the commit). The table's files come unordered from its snapshot; this puts them
/// back in commit order.
fn commit_order(dir: &Path) -> Result<HashMap<String, (u64, usize)>, String> {
    let log = dir.join("_delta_log");
    let entries = std::fs::read_dir(&log).map_err(|e| format!("{}: {e}", log.display()))?;
    let mut order = HashMap::new();
    for entry in entries {
        let path = entry.map_err(|e| format!("{}: {e}", log.display()))?.path();
        let Some(version) = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".json"))
            .and_then(|v| v.parse::<u64>().ok())
        else {
            continue;
        };
        let text =
            std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let adds = text
            .lines()
            .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
            .filter_map(|action| action["add"]["path"].as_str().map(str::to_string));
        for (position, added) in adds.enumerate() {
            order.insert(file_name(&added).to_string(), (version, position));
        }
    }
    Ok(order)
}

/// `batch` as rows of `schema`: the table's schema to delta-kernel's before writing (the
/// same, for canonical schemas), and back after reading.
fn cast_to(batch: &RecordBatch, schema: &SchemaRef) -> Result<RecordBatch, String> {
    conform(batch, schema).map_err(|status| status.message().to_string())
}

#[cfg(test)]
mod tests {
    use arrow::array::{
        ArrayRef, BinaryArray, BooleanArray, Date32Array, Decimal128Array, Float32Array,
        Float64Array, Int16Array, Int32Array, Int32Builder, Int64Array, Int64Builder, Int8Array,
        ListBuilder, MapBuilder, StringArray, StringBuilder, StructArray,
        TimestampMicrosecondArray,
    };
    use arrow::datatypes::{Field, Fields};

    use super::*;
    use crate::canonical::canonical_schema;
    use crate::catalog::Catalog;
    use crate::landing::Landing;

    const TABLE: &str = "cat.sch.every_type";

    /// `rows` rows with a column of every canonical type, nulls in every nullable column.
    fn every_type(rows: usize, first: i64) -> RecordBatch {
        let ids: Vec<i64> = (first..first + rows as i64).collect();
        let null_every = |k: i64| move |i: &i64| i % k != 0;
        let opt = |k: i64, f: &dyn Fn(i64) -> i64| -> Vec<Option<i64>> {
            ids.iter()
                .map(|i| null_every(k)(i).then(|| f(*i)))
                .collect()
        };
        let mut list = ListBuilder::new(Int32Builder::new());
        let mut map = MapBuilder::new(None, StringBuilder::new(), Int64Builder::new());
        for i in &ids {
            for t in 0..(i % 4) as i32 {
                list.values().append_value(*i as i32 * 10 + t);
            }
            list.append(i % 5 != 0);
            for t in 0..(i % 3) {
                map.keys().append_value(format!("k{t}"));
                map.values().append_option((t != 1).then_some(i * t));
            }
            map.append(i % 6 != 0).unwrap();
        }
        let inner = StructArray::from(vec![
            (
                Arc::new(Field::new("a", DataType::Int32, true)),
                Arc::new(Int32Array::from_iter(
                    ids.iter().map(|i| Some(*i as i32 * 2)),
                )) as ArrayRef,
            ),
            (
                Arc::new(Field::new("b", DataType::Utf8, true)),
                Arc::new(StringArray::from_iter(
                    opt(4, &|i| i)
                        .into_iter()
                        .map(|v| v.map(|v| format!("b{v}"))),
                )),
            ),
        ]);
        let columns: Vec<ArrayRef> = vec![
            Arc::new(Int64Array::from(ids.clone())),
            Arc::new(Int8Array::from_iter(
                opt(2, &|i| i % 100).into_iter().map(|v| v.map(|v| v as i8)),
            )),
            Arc::new(Int16Array::from_iter(
                opt(3, &|i| i * 7).into_iter().map(|v| v.map(|v| v as i16)),
            )),
            Arc::new(Int32Array::from_iter(
                opt(5, &|i| -i).into_iter().map(|v| v.map(|v| v as i32)),
            )),
            Arc::new(Float32Array::from_iter(
                opt(2, &|i| i)
                    .into_iter()
                    .map(|v| v.map(|v| v as f32 / 4.0)),
            )),
            Arc::new(Float64Array::from_iter(
                opt(3, &|i| i)
                    .into_iter()
                    .map(|v| v.map(|v| v as f64 / 3.0)),
            )),
            Arc::new(BooleanArray::from_iter(
                opt(4, &|i| i).into_iter().map(|v| v.map(|v| v % 3 == 0)),
            )),
            Arc::new(StringArray::from_iter(
                opt(7, &|i| i)
                    .into_iter()
                    .map(|v| v.map(|v| format!("s-{v}-é"))),
            )),
            Arc::new(BinaryArray::from_iter(
                opt(2, &|i| i)
                    .into_iter()
                    .map(|v| v.map(|v| v.to_le_bytes().to_vec())),
            )),
            Arc::new(Date32Array::from_iter(
                opt(3, &|i| i - 19_000)
                    .into_iter()
                    .map(|v| v.map(|v| v as i32)),
            )),
            Arc::new(
                TimestampMicrosecondArray::from(opt(2, &|i| 1_700_000_000_000_000 + i))
                    .with_timezone("UTC"),
            ),
            Arc::new(TimestampMicrosecondArray::from(opt(3, &|i| -5_000_000 * i))),
            Arc::new(
                Decimal128Array::from(
                    opt(4, &|i| i * 101 - 5000)
                        .into_iter()
                        .map(|v| v.map(i128::from))
                        .collect::<Vec<_>>(),
                )
                .with_precision_and_scale(10, 2)
                .unwrap(),
            ),
            Arc::new(list.finish()),
            Arc::new(inner),
            Arc::new(map.finish()),
        ];
        let fields: Vec<Field> = [
            "id", "i8", "i16", "i32", "f32", "f64", "flag", "text", "bytes", "day", "ts", "ts_ntz",
            "amount", "tags", "inner", "attrs",
        ]
        .iter()
        .zip(&columns)
        .map(|(name, column)| Field::new(*name, column.data_type().clone(), *name != "id"))
        .collect();
        RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).unwrap()
    }

    fn settings(interval_ms: u64, max_rows: usize) -> DeltaSettings {
        DeltaSettings {
            interval: Duration::from_millis(interval_ms),
            max_rows,
            max_bytes: DEFAULT_COMMIT_MAX_BYTES,
        }
    }

    fn catalog(dir: &Path, settings: DeltaSettings) -> Catalog {
        Catalog::new(Landing::Delta, dir.to_path_buf(), false).with_delta_settings(settings)
    }

    async fn read_all(catalog: &Catalog, name: &str) -> RecordBatch {
        let table = catalog.get(name).expect("table exists");
        let batches = table.read().await.unwrap();
        arrow::compute::concat_batches(table.schema(), &batches).unwrap()
    }

    /// The table's latest Delta version, as another reader sees it.
    async fn version(dir: &Path) -> u64 {
        let url = deltalake::ensure_table_uri(dir.to_string_lossy()).unwrap();
        deltalake::open_table(url).await.unwrap().version().unwrap()
    }

    fn table_dir(data_dir: &Path) -> PathBuf {
        data_dir.join("cat").join("sch").join("every_type")
    }

    #[tokio::test]
    async fn every_type_reads_back_value_by_value() {
        let dir = tempfile::tempdir().unwrap();
        let catalog = catalog(dir.path(), settings(20, 1000));
        let (a, b) = (every_type(37, 0), every_type(50, 37));
        let table = catalog.create(TABLE, a.schema()).unwrap();
        let commits = [table.submit(a.clone()), table.submit(b.clone())];
        for commit in commits {
            commit.await.unwrap().unwrap();
        }
        let expected = arrow::compute::concat_batches(&a.schema(), &[a, b]).unwrap();
        let expected = cast_to(&expected, table.schema()).unwrap();
        assert_eq!(read_all(&catalog, TABLE).await, expected);
    }

    #[tokio::test]
    async fn small_submits_are_grouped_into_few_commits() {
        let dir = tempfile::tempdir().unwrap();
        let catalog = catalog(dir.path(), settings(100, 1_000_000));
        let table = catalog.create(TABLE, every_type(1, 0).schema()).unwrap();
        let commits: Vec<Commit> = (0..200).map(|i| table.submit(every_type(1, i))).collect();
        for commit in commits {
            commit.await.unwrap().unwrap();
        }
        let versions = version(&table_dir(dir.path())).await;
        // Version 0 creates the table; 200 submits within ~100 ms are one or two groups.
        assert!((1..=3).contains(&versions), "{versions} versions");
        assert_eq!(read_all(&catalog, TABLE).await.num_rows(), 200);
    }

    #[tokio::test]
    async fn a_group_reaching_max_rows_commits_before_the_interval() {
        let dir = tempfile::tempdir().unwrap();
        let catalog = catalog(dir.path(), settings(60_000, 100));
        let table = catalog.create(TABLE, every_type(1, 0).schema()).unwrap();
        let started = std::time::Instant::now();
        let commits: Vec<Commit> = (0..6)
            .map(|i| table.submit(every_type(50, i * 50)))
            .collect();
        for commit in commits {
            commit.await.unwrap().unwrap();
        }
        assert!(started.elapsed() < Duration::from_secs(30));
        assert_eq!(version(&table_dir(dir.path())).await, 3);
    }

    #[tokio::test]
    async fn flush_commits_a_pending_group_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let catalog = catalog(dir.path(), settings(60_000, 1_000_000));
        let table = catalog.create(TABLE, every_type(1, 0).schema()).unwrap();
        let mut commit = table.submit(every_type(10, 0));
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(commit.try_recv().is_err(), "committed before the interval");
        catalog.flush().await;
        commit.await.unwrap().unwrap();
        assert_eq!(read_all(&catalog, TABLE).await.num_rows(), 10);
    }

    #[tokio::test]
    async fn a_new_catalog_on_the_same_dir_reads_the_old_rows() {
        let dir = tempfile::tempdir().unwrap();
        let input = every_type(40, 0);
        {
            let catalog = catalog(dir.path(), settings(10, 1000));
            let table = catalog.create(TABLE, input.schema()).unwrap();
            table.submit(input.clone()).await.unwrap().unwrap();
        }
        // Reopened without a declared schema: delta-kernel's Arrow types.
        let reopened = catalog(dir.path(), settings(10, 1000));
        reopened.reopen(&[]).await.unwrap();
        assert_eq!(reopened.names(), vec![TABLE.to_string()]);
        let kernel = read_all(&reopened, TABLE).await;
        assert_eq!(kernel.schema(), kernel_schema());
        assert_eq!(kernel, cast_to(&input, &kernel_schema()).unwrap());
        // It keeps landing rows after the old ones.
        let table = reopened.get(TABLE).unwrap();
        let more = every_type(5, 40);
        table.submit(more.clone()).await.unwrap().unwrap();
        assert_eq!(read_all(&reopened, TABLE).await.num_rows(), 45);
        drop(reopened);

        // Reopened with the declared schema, which the table on disk matches.
        let declared = catalog(dir.path(), settings(10, 1000));
        declared
            .reopen(&[(TABLE.to_string(), input.schema())])
            .await
            .unwrap();
        let all = read_all(&declared, TABLE).await;
        assert_eq!(all.slice(0, 40), cast_to(&input, &kernel_schema()).unwrap());
        assert_eq!(all.slice(40, 5), cast_to(&more, &kernel_schema()).unwrap());
    }

    /// The Arrow schema delta-kernel gives for the Delta schema of [`every_type`].
    fn kernel_schema() -> SchemaRef {
        let input = every_type(1, 0).schema();
        let mut fields: Vec<Field> = input.fields().iter().map(|f| f.as_ref().clone()).collect();
        fields[13] = Field::new(
            "tags",
            DataType::List(Arc::new(Field::new("element", DataType::Int32, true))),
            true,
        );
        let entries = Fields::from(vec![
            Field::new("key", DataType::Utf8, false),
            Field::new("value", DataType::Int64, true),
        ]);
        fields[15] = Field::new(
            "attrs",
            DataType::Map(
                Arc::new(Field::new("key_value", DataType::Struct(entries), false)),
                false,
            ),
            true,
        );
        Arc::new(Schema::new(fields))
    }

    #[tokio::test]
    async fn a_declared_schema_must_match_the_table_on_disk() {
        let dir = tempfile::tempdir().unwrap();
        let input = every_type(3, 0);
        {
            let catalog = catalog(dir.path(), settings(10, 1000));
            let table = catalog.create(TABLE, input.schema()).unwrap();
            table.submit(input).await.unwrap().unwrap();
        }
        let other = Arc::new(Schema::new(vec![Field::new("id", DataType::Int64, false)]));
        let err = catalog(dir.path(), settings(10, 1000))
            .reopen(&[(TABLE.to_string(), other)])
            .await
            .unwrap_err();
        assert!(err.to_string().contains(TABLE), "{err}");
    }

    #[test]
    fn types_without_a_lossless_delta_type_are_rejected_by_name() {
        let cases = [
            (DataType::UInt32, "n"),
            (DataType::Float16, "n"),
            (DataType::Timestamp(TimeUnit::Nanosecond, None), "n"),
            (
                DataType::Timestamp(TimeUnit::Microsecond, Some("Europe/Paris".into())),
                "n",
            ),
            (DataType::new_list(DataType::UInt8, true), "n[]"),
        ];
        for (data_type, column) in cases {
            let schema = Schema::new(vec![Field::new("n", data_type.clone(), true)]);
            let err = delta_schema(&schema).unwrap_err();
            assert_eq!(err.code(), tonic::Code::InvalidArgument, "{data_type}");
            assert!(
                err.message().contains(&format!("column {column}:")),
                "{data_type}: {}",
                err.message()
            );
        }
    }

    #[tokio::test]
    async fn the_catalog_creates_no_table_for_a_type_delta_cannot_store() {
        let dir = tempfile::tempdir().unwrap();
        let catalog = catalog(dir.path(), settings(10, 1000));
        let schema = Arc::new(Schema::new(vec![Field::new("n", DataType::UInt64, true)]));
        let err = catalog.create(TABLE, schema).unwrap_err();
        assert_eq!(err.code(), tonic::Code::InvalidArgument);
        assert!(err.message().contains("column n"), "{}", err.message());
        assert!(catalog.names().is_empty());
        assert!(!table_dir(dir.path()).exists());
    }

    #[tokio::test]
    async fn a_table_that_cannot_be_created_fails_its_commits() {
        let dir = tempfile::tempdir().unwrap();
        // A file where the table's directory would be.
        std::fs::create_dir_all(dir.path().join("cat").join("sch")).unwrap();
        std::fs::write(table_dir(dir.path()), b"not a directory").unwrap();
        let catalog = catalog(dir.path(), settings(10, 1000));
        let table = catalog.create(TABLE, every_type(1, 0).schema()).unwrap();
        let err = table.submit(every_type(1, 0)).await.unwrap().unwrap_err();
        assert!(err.contains("every_type"), "{err}");
        assert!(table.read().await.is_err());
    }

    #[tokio::test]
    async fn a_full_queue_holds_writers_back_until_the_task_takes_it() {
        // The table's task is held before it reads its queue, as during a long commit.
        let (open, opened) = oneshot::channel::<()>();
        let sink = DeltaSink::spawn(
            TABLE,
            PathBuf::from("unused"),
            every_type(1, 0).schema(),
            DeltaSettings {
                max_bytes: 1,
                ..settings(10, 1000)
            },
            async move {
                let _ = opened.await;
                Err(deltalake::DeltaTableError::Generic("held".into()))
            },
            || {},
        )
        .unwrap();
        sink.ready().await; // empty: room
        let commit = sink.submit(every_type(5, 0));
        let mut ready = sink.ready();
        let waited = tokio::time::timeout(Duration::from_millis(200), &mut ready).await;
        assert!(waited.is_err(), "a writer went on past a full queue");
        let _ = open.send(());
        tokio::time::timeout(Duration::from_secs(10), ready)
            .await
            .expect("room once the task took the batch");
        let error = commit.await.unwrap().unwrap_err();
        assert!(error.contains("could not be created or opened"), "{error}");
    }

    /// Writes the table that python/tests/test_local_delta.py reads with Polars and
    /// deltalake: `<dir>/cat/sch/every_type` (three commits) and the same rows as an Arrow
    /// IPC file `<dir>/every_type.arrow`, `dir` given by `ZEROBUS_DELTA_INTEROP_DIR`.
    #[tokio::test]
    #[ignore = "run by python/tests/test_local_delta.py, which sets ZEROBUS_DELTA_INTEROP_DIR"]
    async fn write_interop_table() {
        let dir = PathBuf::from(
            std::env::var("ZEROBUS_DELTA_INTEROP_DIR").expect("ZEROBUS_DELTA_INTEROP_DIR"),
        );
        let catalog = catalog(&dir, settings(60_000, 1_000_000));
        let batches: Vec<RecordBatch> = (0..3).map(|i| every_type(30, i * 30)).collect();
        let table = catalog.create(TABLE, batches[0].schema()).unwrap();
        for batch in &batches {
            let commit = table.submit(batch.clone());
            catalog.flush().await;
            commit.await.unwrap().unwrap();
        }
        assert_eq!(version(&table_dir(&dir)).await, 3);
        let file = std::fs::File::create(dir.join("every_type.arrow")).unwrap();
        let mut ipc = arrow::ipc::writer::FileWriter::try_new(file, &batches[0].schema()).unwrap();
        for batch in &batches {
            ipc.write(batch).unwrap();
        }
        ipc.finish().unwrap();
    }

    #[test]
    fn delta_schema_of_canonical_types_round_trips() {
        let schema = kernel_schema();
        let back = arrow_schema(&delta_schema(&schema).unwrap()).unwrap();
        assert_eq!(back, schema);
        // The canonical schema is delta-kernel's.
        assert_eq!(
            canonical_schema(&every_type(1, 0).schema()).unwrap(),
            schema
        );
    }
}
