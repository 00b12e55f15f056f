//! The server's tables: their Arrow schemas, where their rows land, and their counters.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use tonic::Status;

use crate::canonical::canonical_schema;
use crate::dedup::SeenRows;
use crate::error::LocalError;
use crate::faults::Faults;
use crate::landing::delta::{self, DeltaSettings, DeltaSink};
use crate::landing::{Commit, Landing, MemorySink, NoneSink, Sink};
use crate::lock;
use crate::names::{table_key, validate_columns};

/// Record counts of one table, over every stream that wrote to it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Counters {
    /// Records received (decoded and handed to the landing).
    pub received: u64,
    /// Ingest calls received: protobuf ingest requests and Arrow Flight record batches
    /// (each decoded and handed to the landing as one batch).
    pub requests: u64,
    /// Records made durable by the landing (always 0 in [`Landing::None`]).
    pub committed: u64,
    /// Records covered by an acknowledgement sent to the client.
    pub acknowledged: u64,
    /// Records identical to one of the last distinct records the table received (a resend
    /// after recovery, or a genuinely repeated row); see
    /// [`LocalZerobusBuilder::duplicate_window`](crate::LocalZerobusBuilder::duplicate_window).
    pub duplicates: u64,
    /// Streams (gRPC or Arrow Flight) opened on the table.
    pub streams_opened: u64,
    /// Arrow Flight record batches received without IPC body compression.
    pub flight_batches_uncompressed: u64,
    /// Arrow Flight record batches received with LZ4 frame IPC body compression.
    pub flight_batches_lz4: u64,
    /// Arrow Flight record batches received with ZSTD IPC body compression.
    pub flight_batches_zstd: u64,
}

/// One table of the server.
#[derive(Debug)]
pub(crate) struct Table {
    /// Tells this table from an earlier one of the same name (see [`Catalog::create`]).
    id: u64,
    schema: SchemaRef,
    sink: Box<dyn Sink>,
    counters: Mutex<Counters>,
    /// `None` in [`Landing::None`], where rows are not kept, or with a duplicate window 0.
    seen: Option<SeenRows>,
}

impl Table {
    /// The table's Arrow schema (the Delta table's columns).
    pub(crate) fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    /// Hands `batch` to the landing (counted as received); see [`Sink::submit`].
    pub(crate) fn submit(&self, batch: RecordBatch) -> Commit {
        let mut counters = lock(&self.counters);
        counters.received += batch.num_rows() as u64;
        counters.requests += 1;
        drop(counters);
        self.sink.submit(batch)
    }

    /// Resolves once the landing has room for more rows; see [`Sink::ready`].
    pub(crate) async fn ready(&self) {
        self.sink.ready().await;
    }

    /// Records that one more stream writes to this table.
    pub(crate) fn count_stream(&self) {
        lock(&self.counters).streams_opened += 1;
    }

    /// Records the IPC body compression of one Arrow Flight record batch.
    pub(crate) fn count_flight_compression(&self, codec: Option<arrow::ipc::CompressionType>) {
        let mut counters = lock(&self.counters);
        match codec {
            None => counters.flight_batches_uncompressed += 1,
            Some(arrow::ipc::CompressionType::LZ4_FRAME) => counters.flight_batches_lz4 += 1,
            Some(_) => counters.flight_batches_zstd += 1,
        }
    }

    /// Records `rows` as committed.
    pub(crate) fn count_committed(&self, rows: u64) {
        lock(&self.counters).committed += rows;
    }

    /// Records `rows` as acknowledged to a client.
    pub(crate) fn count_acknowledged(&self, rows: u64) {
        lock(&self.counters).acknowledged += rows;
    }

    /// Counts the records byte-identical to one received recently on this table (see
    /// [`SeenRows`]) as duplicates, and remembers them (by a 64-bit hash). Not done in
    /// [`Landing::None`].
    pub(crate) fn count_duplicate_records<'a>(&self, records: impl IntoIterator<Item = &'a [u8]>) {
        if let Some(seen) = &self.seen {
            self.add_duplicates(seen.count_repeated_records(records));
        }
    }

    /// Counts the rows of `batch` identical to rows received before on this table as
    /// duplicates (not in [`Landing::None`]). Call before [`Table::submit`].
    pub(crate) fn count_duplicates_in(&self, batch: &RecordBatch) {
        if let Some(seen) = &self.seen {
            self.add_duplicates(seen.count_repeats(batch));
        }
    }

    fn add_duplicates(&self, rows: u64) {
        if rows > 0 {
            lock(&self.counters).duplicates += rows;
        }
    }

    pub(crate) fn counters(&self) -> Counters {
        *lock(&self.counters)
    }

    pub(crate) async fn read(&self) -> Result<Vec<RecordBatch>, LocalError> {
        self.sink.read().await
    }
}

/// The tables by key (the lowercase name, see [`table_key`]).
type Tables = Mutex<HashMap<String, Arc<Table>>>;

/// Every table of a server, created up front or by the first stream that names them.
///
/// Table names are case-insensitive, as in Unity Catalog: every method takes any spelling
/// and the catalog keeps the lowercase one.
#[derive(Debug)]
pub(crate) struct Catalog {
    landing: Landing,
    data_dir: PathBuf,
    strict: bool,
    delta: DeltaSettings,
    /// Distinct rows each table remembers to count duplicates (0: not counted).
    duplicate_window: usize,
    /// Shared with the Delta landing's tasks, which unregister a table they cannot create.
    tables: Arc<Tables>,
    next_id: AtomicU64,
    faults: Mutex<HashMap<String, Arc<Faults>>>,
}

impl Catalog {
    pub(crate) fn new(landing: Landing, data_dir: PathBuf, strict: bool) -> Self {
        Self {
            landing,
            data_dir,
            strict,
            delta: DeltaSettings::default(),
            duplicate_window: crate::dedup::DEFAULT_DUPLICATE_WINDOW,
            tables: Arc::default(),
            next_id: AtomicU64::new(0),
            faults: Mutex::default(),
        }
    }

    /// When the Delta landing commits (default [`DeltaSettings::default`]).
    pub(crate) fn with_delta_settings(mut self, settings: DeltaSettings) -> Self {
        self.delta = settings;
        self
    }

    /// How many distinct rows each table remembers to count duplicates (0: none).
    pub(crate) fn with_duplicate_window(mut self, rows: usize) -> Self {
        self.duplicate_window = rows;
        self
    }

    pub(crate) fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The table, if it exists (`None` for an invalid name).
    pub(crate) fn get(&self, name: &str) -> Option<Arc<Table>> {
        let key = table_key(name).ok()?;
        lock(&self.tables).get(&key).cloned()
    }

    /// Every table name (lowercase), sorted.
    pub(crate) fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = lock(&self.tables).keys().cloned().collect();
        names.sort();
        names
    }

    /// The fault switches of `name` (created on first use, also for unknown tables).
    pub(crate) fn faults(&self, name: &str) -> Arc<Faults> {
        let key = table_key(name).unwrap_or_else(|_| name.to_string());
        Arc::clone(lock(&self.faults).entry(key).or_default())
    }

    /// Creates `name` with `schema` in its canonical form (see [`canonical_schema`]);
    /// a no-op if it exists with an equal schema.
    ///
    /// A Delta table is created by its landing task: if that fails (the directory cannot
    /// be made, ...), the task fails the table's commits and unregisters it, so that it
    /// is not listed, not described by the Unity Catalog endpoint, and the next stream
    /// tries to create it again.
    ///
    /// # Errors
    /// `INVALID_ARGUMENT` for an invalid table or column name (see [`crate::names`]) or a
    /// type the landing cannot store; `ALREADY_EXISTS` if the table exists with another
    /// schema.
    pub(crate) fn create(&self, name: &str, schema: SchemaRef) -> Result<Arc<Table>, Status> {
        let key = table_key(name)?;
        validate_columns(&schema)?;
        let schema = canonical_schema(&schema)?;
        let mut tables = lock(&self.tables);
        if let Some(table) = tables.get(&key) {
            if table.schema.fields() == schema.fields() {
                return Ok(Arc::clone(table));
            }
            return Err(Status::already_exists(format!(
                "table {key} exists with a different schema"
            )));
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let sink: Box<dyn Sink> = match self.landing {
            Landing::Memory => Box::<MemorySink>::default(),
            Landing::None => Box::new(NoneSink),
            Landing::Delta => Box::new(DeltaSink::create(
                &key,
                self.table_dir(&key),
                Arc::clone(&schema),
                self.delta,
                unregister(Arc::downgrade(&self.tables), key.clone(), id),
            )?),
        };
        Ok(self.insert(&mut tables, key, id, schema, sink))
    }

    fn insert(
        &self,
        tables: &mut HashMap<String, Arc<Table>>,
        key: String,
        id: u64,
        schema: SchemaRef,
        sink: Box<dyn Sink>,
    ) -> Arc<Table> {
        let table = Arc::new(Table {
            id,
            schema,
            sink,
            counters: Mutex::default(),
            seen: self.seen_rows(),
        });
        tables.insert(key, Arc::clone(&table));
        table
    }

    /// `<data_dir>/<catalog>/<schema>/<table>` for `catalog.schema.table` (as spelled).
    fn table_dir(&self, name: &str) -> PathBuf {
        name.split('.')
            .fold(self.data_dir.clone(), |dir, part| dir.join(part))
    }

    /// Registers the Delta tables already under the data directory (Delta landing only),
    /// so that rows landed by an earlier server are kept and read back. A table also
    /// `declared` up front must have the same Delta schema. Every table's schema is the
    /// canonical form of its Delta schema (what delta-kernel reads it back as).
    ///
    /// # Errors
    /// [`LocalError::Table`] if a table does not match its declared schema,
    /// [`LocalError::Delta`] if one cannot be loaded, [`LocalError::Io`] if the data
    /// directory cannot be listed.
    pub(crate) async fn reopen(&self, declared: &[(String, SchemaRef)]) -> Result<(), LocalError> {
        if self.landing != Landing::Delta {
            return Ok(());
        }
        for found in delta::find_tables(&self.data_dir).await? {
            let name = found.name;
            let failed = |e: String| LocalError::table(&name, e);
            let key = table_key(&name).map_err(|s| failed(s.message().into()))?;
            if lock(&self.tables).contains_key(&key) {
                return Err(failed(format!(
                    "another table under {} has the same name ignoring case (table names \
                     are case-insensitive); rename or remove one of them",
                    self.data_dir.display()
                )));
            }
            let declared = declared
                .iter()
                .find(|(n, _)| table_key(n).is_ok_and(|n| n == key));
            let schema = match declared {
                Some((_, declared)) => {
                    let schema =
                        canonical_schema(declared).map_err(|s| failed(s.message().into()))?;
                    let wanted =
                        delta::delta_schema(&schema).map_err(|s| failed(s.message().into()))?;
                    if wanted != found.schema {
                        return Err(failed(format!(
                            "the Delta table in {} has the schema {:?}, not the declared {:?}",
                            self.table_dir(&name).display(),
                            found.schema,
                            wanted
                        )));
                    }
                    schema
                }
                None => delta::arrow_schema(&found.schema)
                    .and_then(|kernel| canonical_schema(&kernel).map_err(|s| s.message().into()))
                    .map_err(failed)?,
            };
            let sink = DeltaSink::open(
                &key,
                self.table_dir(&name),
                Arc::clone(&schema),
                found.table,
                self.delta,
            )
            .map_err(|s| failed(s.message().into()))?;
            let id = self.next_id.fetch_add(1, Ordering::Relaxed);
            self.insert(&mut lock(&self.tables), key, id, schema, Box::new(sink));
        }
        Ok(())
    }

    /// Makes every table's pending rows durable (or failed) now.
    pub(crate) async fn flush(&self) {
        let tables: Vec<Arc<Table>> = lock(&self.tables).values().cloned().collect();
        for table in tables {
            table.sink.flush().await;
        }
    }

    /// The table a new stream writes to: the existing one, or (unless strict) one created
    /// with `proposed`, the schema the stream's own descriptor or Arrow schema implies.
    /// Checking that the stream's schema is compatible with an existing table is the
    /// caller's job (it depends on the record format).
    pub(crate) fn open_for_stream(
        &self,
        name: &str,
        proposed: impl FnOnce() -> Result<SchemaRef, Status>,
    ) -> Result<Arc<Table>, Status> {
        let table = match self.existing(name)? {
            Some(table) => table,
            None => self.create(name, proposed()?)?,
        };
        table.count_stream();
        Ok(table)
    }

    /// The table if it exists; `None` if a stream may create it; `NOT_FOUND` in strict mode.
    pub(crate) fn existing(&self, name: &str) -> Result<Option<Arc<Table>>, Status> {
        let key = table_key(name)?;
        match lock(&self.tables).get(&key) {
            Some(table) => Ok(Some(Arc::clone(table))),
            None if self.strict => Err(Status::not_found(format!(
                "table {key} does not exist (the server is strict: create tables up front)"
            ))),
            None => Ok(None),
        }
    }

    /// The duplicate-row window of a new table (none in [`Landing::None`] or window 0).
    fn seen_rows(&self) -> Option<SeenRows> {
        let counted = self.landing != Landing::None && self.duplicate_window > 0;
        counted.then(|| SeenRows::new(self.duplicate_window))
    }
}

/// What the Delta landing calls when it cannot create table `key`: unregisters it,
/// unless a newer table of that name took its place meanwhile.
fn unregister(tables: Weak<Tables>, key: String, id: u64) -> impl FnOnce() + Send + 'static {
    move || {
        let Some(tables) = tables.upgrade() else {
            return;
        };
        let mut tables = lock(&tables);
        if tables.get(&key).is_some_and(|table| table.id == id) {
            tables.remove(&key);
        }
    }
}
