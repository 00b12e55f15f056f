//! Debug output: copies of what the wrapper sends, written to local files for inspection.
//!
//! A [`DebugWriter`] (one per table) writes two independent formats:
//!
//! | format | active file | contents |
//! |---|---|---|
//! | Arrow | `<output_dir>/zerobus/arrow/<table>.arrows` | an Arrow IPC stream of the batches as given |
//! | Protobuf | `<output_dir>/zerobus/proto/<table>.pb` | the encoded records, each prefixed by its length |
//! | | `<output_dir>/zerobus/proto/<table>.desc` | the `FileDescriptorSet` that decodes them |
//!
//! `<table>` is the table name as given (dots included, `cat.sch.tbl`), with path
//! separators and other characters file systems reject replaced by `_`, cut to fit
//! a 255-byte file name.
//!
//! # Rotation and retention
//!
//! The active file is rotated when it reaches [`DebugSettings::max_file_size`]
//! bytes (checked after each write, so a file may exceed the limit by one write),
//! when it is older than [`DebugSettings::rotation_interval`] (checked before each
//! write), when the Arrow schema or protobuf descriptor changes, and when a write
//! finds a file left at the active path (by a previous run, or before
//! [`DebugWriter::shutdown`]): nothing is ever overwritten.
//!
//! Rotating renames the active file to `<table>_<YYYYMMDD_HHMMSS>.<ext>` (UTC);
//! a second rotation within the same second gets `_1`, `_2`, ... appended. A
//! timestamp suffix already in the name is replaced, never stacked. When the
//! name would not fit 255 bytes, rotated files are numbered instead:
//! `<truncated table>_<n>.<ext>`. A rotated `.pb` takes its `.desc` along under
//! the same stem, so every `.pb` file has its decoder next to it.
//!
//! After each rotation, the oldest rotated files of that format and table beyond
//! [`DebugSettings::max_files_retained`] are deleted. Only names this module
//! writes for that table are considered: other files in the directory are never
//! touched.
//!
//! # Reading the files
//!
//! Arrow: `pyarrow.ipc.open_stream(path).read_all()`, DuckDB
//! `SELECT * FROM 'debug/zerobus/arrow/*.arrows'` (arrow community extension), or
//! `arrow::ipc::reader::StreamReader`. Call [`DebugWriter::flush`] first to see the
//! latest batches; a flushed stream reads cleanly even before it is finished.
//!
//! Protobuf: each record is a varint length followed by that many bytes (Java's
//! `writeDelimitedTo`). `protoc` decodes one record at a time:
//! `protoc --decode=<package.Message> --descriptor_set_in=<table>.desc < record.bin`.
//! In Python:
//!
//! ```text
//! from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
//! from google.protobuf.internal.decoder import _DecodeVarint
//! fds = descriptor_pb2.FileDescriptorSet.FromString(open("t.desc", "rb").read())
//! pool = descriptor_pool.DescriptorPool()
//! for f in fds.file: pool.Add(f)
//! Row = message_factory.GetMessageClass(pool.FindMessageTypeByName("pkg.Row"))
//! data, pos = open("t.pb", "rb").read(), 0
//! while pos < len(data):
//!     size, pos = _DecodeVarint(data, pos)
//!     print(Row.FromString(data[pos:pos + size])); pos += size
//! ```
//!
//! In Rust, `prost_reflect::DescriptorPool::decode` reads the `.desc` and
//! `DynamicMessage::decode` each record (see [`DebugWriter::write_protobuf`]).

mod active;
mod arrow_file;
mod proto_file;
mod rotation;
#[cfg(test)]
mod test_support;

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use arrow::record_batch::RecordBatch;
use prost_types::FileDescriptorSet;

use crate::error::ZerobusError;
use arrow_file::{ArrowSink, ARROW_EXT};
use proto_file::{ProtoSink, DESCRIPTOR_EXT, PROTO_EXT};
use rotation::{RotatingFile, RotationPolicy};

/// What to write and when to rotate; filled by the wrapper from its configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DebugSettings {
    /// Root directory; files go to `<output_dir>/zerobus/arrow` and `<output_dir>/zerobus/proto`.
    pub output_dir: PathBuf,
    /// Write Arrow IPC stream files (`.arrows`).
    pub arrow_enabled: bool,
    /// Write length-delimited protobuf files (`.pb`, with `.desc`).
    pub protobuf_enabled: bool,
    /// Rotate when the active file reaches this many bytes; `None` = no size limit.
    pub max_file_size: Option<u64>,
    /// Rotate when the active file is older than this; `None` = no age limit.
    pub rotation_interval: Option<Duration>,
    /// Keep the newest N rotated files per format and table; `None` = keep all.
    pub max_files_retained: Option<usize>,
    /// Flush buffered bytes to disk at least this often (checked on each write).
    pub flush_interval: Duration,
}

impl DebugSettings {
    /// Both formats into `output_dir`, with the defaults of
    /// [`WrapperConfiguration`](crate::WrapperConfiguration): rotation at 10 MiB or one
    /// hour, the newest 10 rotated files kept, a flush every 5 seconds. Change the fields to
    /// taste.
    pub fn new(output_dir: impl Into<PathBuf>) -> Self {
        use crate::config::{
            DEFAULT_DEBUG_FLUSH_INTERVAL_SECS, DEFAULT_DEBUG_MAX_FILES_RETAINED,
            DEFAULT_DEBUG_MAX_FILE_SIZE, DEFAULT_DEBUG_ROTATION_INTERVAL_SECS,
        };
        Self {
            output_dir: output_dir.into(),
            arrow_enabled: true,
            protobuf_enabled: true,
            max_file_size: Some(DEFAULT_DEBUG_MAX_FILE_SIZE),
            rotation_interval: Some(Duration::from_secs(DEFAULT_DEBUG_ROTATION_INTERVAL_SECS)),
            max_files_retained: Some(DEFAULT_DEBUG_MAX_FILES_RETAINED),
            flush_interval: Duration::from_secs(DEFAULT_DEBUG_FLUSH_INTERVAL_SECS),
        }
    }

    fn policy(&self) -> RotationPolicy {
        RotationPolicy {
            max_file_size: self.max_file_size,
            rotation_interval: self.rotation_interval,
            max_files_retained: self.max_files_retained,
        }
    }
}

/// Writes the debug files of one table; see the [module docs](self) for names and formats.
///
/// `Send + Sync`: share it across threads (`Arc<DebugWriter>`). Each format has
/// its own lock, so Arrow and protobuf writes do not wait for each other.
/// One writer per table and output directory: two writers on the same files
/// would rotate each other's files.
///
/// Dropping the writer finishes its files, as [`shutdown`](Self::shutdown) does,
/// logging rather than returning errors.
///
/// ```
/// use std::fs::File;
/// use std::sync::Arc;
///
/// use arrow::array::Int64Array;
/// use arrow::datatypes::{DataType, Field, Schema};
/// use arrow::ipc::reader::StreamReader;
/// use arrow::record_batch::RecordBatch;
/// use arrow_zerobus_sdk_wrapper::{DebugSettings, DebugWriter};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let dir = tempfile::tempdir()?;
/// let mut settings = DebugSettings::new(dir.path());
/// settings.protobuf_enabled = false;
/// settings.rotation_interval = None;
/// let writer = DebugWriter::new(settings, "main.sales.orders")?;
///
/// let schema = Arc::new(Schema::new(vec![Field::new("id", DataType::Int64, false)]));
/// let batch = RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from(vec![1, 2, 3]))])?;
/// writer.write_arrow(&batch)?;
/// writer.shutdown()?;
///
/// let path = writer.active_arrow_path();
/// assert!(path.ends_with("zerobus/arrow/main.sales.orders.arrows"));
/// let batches = StreamReader::try_new(File::open(&path)?, None)?
///     .collect::<Result<Vec<_>, _>>()?;
/// assert_eq!(batches, vec![batch]);
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct DebugWriter {
    arrow_dir: PathBuf,
    proto_dir: PathBuf,
    arrow_path: PathBuf,
    proto_path: PathBuf,
    arrow: Option<Mutex<ArrowSink>>,
    proto: Option<Mutex<ProtoSink>>,
}

impl DebugWriter {
    /// A writer for `table_name`, creating the directories of the enabled formats.
    ///
    /// Files are opened on the first write, not here.
    ///
    /// # Errors
    ///
    /// [`ZerobusError::ConfigurationError`] for an empty table name;
    /// [`ZerobusError::IoError`] naming the directory if it cannot be created (for
    /// example because `output_dir` is a regular file).
    pub fn new(settings: DebugSettings, table_name: &str) -> Result<Self, ZerobusError> {
        let stem = rotation::file_base_for_table(table_name)?;
        let root = settings.output_dir.join("zerobus");
        let arrow_dir = root.join("arrow");
        let proto_dir = root.join("proto");
        let policy = settings.policy();

        let arrow_file = RotatingFile::new(arrow_dir.clone(), &stem, ARROW_EXT, None, policy);
        let proto_file = RotatingFile::new(
            proto_dir.clone(),
            &stem,
            PROTO_EXT,
            Some(DESCRIPTOR_EXT),
            policy,
        );
        let arrow_path = arrow_file.active_path().to_path_buf();
        let proto_path = proto_file.active_path().to_path_buf();

        let arrow = if settings.arrow_enabled {
            create_dir(&arrow_dir)?;
            Some(Mutex::new(ArrowSink::new(
                arrow_file,
                settings.flush_interval,
            )))
        } else {
            None
        };
        let proto = if settings.protobuf_enabled {
            create_dir(&proto_dir)?;
            Some(Mutex::new(ProtoSink::new(
                proto_file,
                settings.flush_interval,
            )))
        } else {
            None
        };
        Ok(Self {
            arrow_dir,
            proto_dir,
            arrow_path,
            proto_path,
            arrow,
            proto,
        })
    }

    /// Appends `batch` to the Arrow file; does nothing if Arrow output is disabled.
    ///
    /// # Errors
    ///
    /// [`ZerobusError::IoError`] naming the file on a write, rename or directory
    /// failure. After a failed write the next one starts a fresh file.
    pub fn write_arrow(&self, batch: &RecordBatch) -> Result<(), ZerobusError> {
        match &self.arrow {
            Some(sink) => lock(sink, ArrowSink::abandon).write(batch),
            None => Ok(()),
        }
    }

    /// Appends `records` (each one encoded message of `descriptor`) to the
    /// protobuf file; does nothing if protobuf output is disabled.
    ///
    /// A `descriptor` different from the previous call's rotates the `.pb` file
    /// first and writes the new `.desc`.
    ///
    /// # Errors
    ///
    /// [`ZerobusError::IoError`] naming the file, as for [`write_arrow`](Self::write_arrow).
    ///
    /// # Example: writing and decoding
    ///
    /// ```
    /// use arrow_zerobus_sdk_wrapper::{DebugSettings, DebugWriter};
    /// use prost_reflect::{DescriptorPool, DynamicMessage};
    /// use prost_types::{DescriptorProto, FileDescriptorProto, FileDescriptorSet};
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let dir = tempfile::tempdir()?;
    /// let mut settings = DebugSettings::new(dir.path());
    /// settings.arrow_enabled = false;
    /// let writer = DebugWriter::new(settings, "t")?;
    /// // An empty message `Empty`; its records are empty byte strings.
    /// let descriptor = FileDescriptorSet {
    ///     file: vec![FileDescriptorProto {
    ///         name: Some("t.proto".into()),
    ///         message_type: vec![DescriptorProto { name: Some("Empty".into()), ..Default::default() }],
    ///         ..Default::default()
    ///     }],
    /// };
    /// writer.write_protobuf(&descriptor, [&b""[..], &b""[..]])?;
    /// writer.flush()?;
    ///
    /// // Each record: varint length, then the bytes.
    /// let data = std::fs::read(writer.active_proto_path())?;
    /// assert_eq!(data, [0, 0]);
    /// let pool = DescriptorPool::decode(&*std::fs::read(writer.proto_dir().join("t.desc"))?)?;
    /// let message = pool.get_message_by_name("Empty").unwrap();
    /// DynamicMessage::decode(message, &data[1..1])?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn write_protobuf<'a>(
        &self,
        descriptor: &FileDescriptorSet,
        records: impl IntoIterator<Item = &'a [u8]>,
    ) -> Result<(), ZerobusError> {
        match &self.proto {
            Some(sink) => lock(sink, ProtoSink::abandon).write(descriptor, records),
            None => Ok(()),
        }
    }

    /// Writes buffered bytes of both formats to disk, so readers see everything written so far.
    ///
    /// # Errors
    ///
    /// The first [`ZerobusError::IoError`]; both formats are flushed regardless.
    pub fn flush(&self) -> Result<(), ZerobusError> {
        self.on_both(ArrowSink::flush, ProtoSink::flush)
    }

    /// Finishes and closes both files (the Arrow end-of-stream marker is written).
    ///
    /// The files stay at their active paths. The writer remains usable: a later
    /// write rotates the finished file to its timestamped name and starts a new one.
    ///
    /// # Errors
    ///
    /// The first [`ZerobusError::IoError`]; both formats are closed regardless.
    pub fn shutdown(&self) -> Result<(), ZerobusError> {
        self.on_both(ArrowSink::finish, ProtoSink::finish)
    }

    /// Runs `arrow` and `proto` on the enabled sinks (both, even if the first fails) and
    /// returns the first error.
    fn on_both(
        &self,
        arrow: impl FnOnce(&mut ArrowSink) -> Result<(), ZerobusError>,
        proto: impl FnOnce(&mut ProtoSink) -> Result<(), ZerobusError>,
    ) -> Result<(), ZerobusError> {
        let arrow = self
            .arrow
            .as_ref()
            .map_or(Ok(()), |sink| arrow(&mut lock(sink, ArrowSink::abandon)));
        let proto = self
            .proto
            .as_ref()
            .map_or(Ok(()), |sink| proto(&mut lock(sink, ProtoSink::abandon)));
        arrow.and(proto)
    }

    /// `<output_dir>/zerobus/arrow`.
    pub fn arrow_dir(&self) -> &Path {
        &self.arrow_dir
    }

    /// `<output_dir>/zerobus/proto`.
    pub fn proto_dir(&self) -> &Path {
        &self.proto_dir
    }

    /// The Arrow file currently written to (it exists only once a batch was written).
    pub fn active_arrow_path(&self) -> PathBuf {
        self.arrow_path.clone()
    }

    /// The protobuf record file currently written to; its descriptor is the same path with `.desc`.
    pub fn active_proto_path(&self) -> PathBuf {
        self.proto_path.clone()
    }
}

fn create_dir(dir: &Path) -> Result<(), ZerobusError> {
    fs::create_dir_all(dir).map_err(|err| ZerobusError::io(dir, err))
}

/// Locks `sink`, recovering from poisoning.
///
/// A poisoned lock would otherwise fail every later write. Writes take the
/// active file out of the sink while writing, so a panic mid-write (say, in the
/// caller's record iterator) already drops it; `abandon` covers any other panic
/// with the lock held, so the next write starts a fresh file either way.
fn lock<T>(sink: &Mutex<T>, abandon: fn(&mut T)) -> MutexGuard<'_, T> {
    sink.lock().unwrap_or_else(|poisoned| {
        sink.clear_poison();
        let mut guard = poisoned.into_inner();
        abandon(&mut guard);
        guard
    })
}

#[cfg(test)]
mod tests {
    use super::test_support::*;
    use super::*;
    use std::sync::Arc;

    #[test]
    fn writer_is_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<DebugWriter>();
    }

    #[test]
    fn directories_follow_the_documented_layout() {
        let dir = tempfile::tempdir().unwrap();
        let settings = DebugSettings {
            protobuf_enabled: true,
            ..arrow_settings(dir.path())
        };
        let writer = DebugWriter::new(settings, "cat.sch.tbl").unwrap();
        assert_eq!(writer.arrow_dir(), dir.path().join("zerobus/arrow"));
        assert_eq!(writer.proto_dir(), dir.path().join("zerobus/proto"));
        assert!(writer.arrow_dir().is_dir() && writer.proto_dir().is_dir());
        assert_eq!(
            writer.active_proto_path(),
            dir.path().join("zerobus/proto/cat.sch.tbl.pb")
        );
    }

    #[test]
    fn disabled_formats_write_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let settings = DebugSettings {
            arrow_enabled: false,
            ..arrow_settings(dir.path())
        };
        let writer = DebugWriter::new(settings, "t").unwrap();
        writer.write_arrow(&id_batch(0, 1)).unwrap();
        writer
            .write_protobuf(&row_descriptor("Row"), [&b"x"[..]])
            .unwrap();
        writer.flush().unwrap();
        writer.shutdown().unwrap();
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn table_name_cannot_escape_the_directory() {
        let dir = tempfile::tempdir().unwrap();
        let writer = DebugWriter::new(arrow_settings(dir.path()), "../../etc/x").unwrap();
        writer.write_arrow(&id_batch(0, 1)).unwrap();
        assert_eq!(
            writer.active_arrow_path().parent(),
            Some(writer.arrow_dir())
        );
        assert!(writer.arrow_dir().join(".._.._etc_x.arrows").is_file());
    }

    #[test]
    fn output_dir_that_is_a_file_is_an_io_error_naming_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("not-a-dir");
        fs::write(&file, b"x").unwrap();
        let err = DebugWriter::new(arrow_settings(&file), "t").unwrap_err();
        match err {
            ZerobusError::IoError { path, .. } => assert!(path.starts_with(&file), "{path:?}"),
            other => panic!("expected IoError, got {other:?}"),
        }
    }

    #[test]
    fn write_into_a_removed_directory_is_an_io_error() {
        let dir = tempfile::tempdir().unwrap();
        let writer = DebugWriter::new(arrow_settings(dir.path()), "t").unwrap();
        fs::remove_dir_all(writer.arrow_dir()).unwrap();
        let err = writer.write_arrow(&id_batch(0, 1)).unwrap_err();
        assert!(matches!(err, ZerobusError::IoError { .. }), "{err:?}");
        assert!(err.to_string().contains("arrow"), "{err}");

        fs::create_dir_all(writer.arrow_dir()).unwrap();
        writer.write_arrow(&id_batch(0, 1)).unwrap();
        writer.shutdown().unwrap();
        assert_eq!(
            read_stream(&writer.active_arrow_path()),
            vec![id_batch(0, 1)]
        );
    }

    #[test]
    fn retention_keeps_the_newest_rotated_files() {
        let dir = tempfile::tempdir().unwrap();
        let mut settings = arrow_settings(dir.path());
        settings.max_file_size = Some(1);
        settings.max_files_retained = Some(3);
        let writer = DebugWriter::new(settings, "t").unwrap();
        let foreign = writer.arrow_dir().join("t_notes.arrows");
        let other_table = writer.arrow_dir().join("other_20250101_120000.arrows");
        fs::create_dir_all(writer.arrow_dir()).unwrap();
        fs::write(&foreign, b"keep me").unwrap();
        fs::write(&other_table, b"keep me too").unwrap();

        for i in 0..7 {
            writer.write_arrow(&id_batch(i, 1)).unwrap();
        }

        let files = arrow_files_in_order(&writer);
        assert_eq!(files.len(), 3, "{files:?}");
        let ids: Vec<_> = files.iter().flat_map(|f| read_stream(f)).collect();
        assert_eq!(ids, vec![id_batch(4, 1), id_batch(5, 1), id_batch(6, 1)]);
        assert!(foreign.is_file() && other_table.is_file());
    }

    #[test]
    fn unlimited_retention_keeps_every_file() {
        let dir = tempfile::tempdir().unwrap();
        let mut settings = arrow_settings(dir.path());
        settings.max_file_size = Some(1);
        let writer = DebugWriter::new(settings, "t").unwrap();
        for i in 0..7 {
            writer.write_arrow(&id_batch(i, 1)).unwrap();
        }
        let files = arrow_files_in_order(&writer);
        assert_eq!(files.len(), 7);
        let read: Vec<_> = files.iter().flat_map(|f| read_stream(f)).collect();
        assert_eq!(read, (0..7).map(|i| id_batch(i, 1)).collect::<Vec<_>>());
    }

    #[test]
    fn rotated_names_never_stack_timestamps() {
        let dir = tempfile::tempdir().unwrap();
        let mut settings = arrow_settings(dir.path());
        settings.max_file_size = Some(1);
        let writer = DebugWriter::new(settings, "t_20250101_120000").unwrap();
        for i in 0..3 {
            writer.write_arrow(&id_batch(i, 1)).unwrap();
        }
        for entry in fs::read_dir(writer.arrow_dir()).unwrap() {
            let name = entry.unwrap().file_name().into_string().unwrap();
            let stem = name.strip_suffix(".arrows").unwrap();
            // `t_` + one timestamp (+ optional counter); never a second timestamp.
            assert!(stem.starts_with("t_"), "{name}");
            assert_eq!(rotation::strip_rotation_suffix(stem), "t", "{name}");
            assert!(stem.len() <= "t_20250101_120000_99".len(), "{name}");
        }
    }

    #[test]
    fn long_table_names_fall_back_to_sequence_numbers() {
        let dir = tempfile::tempdir().unwrap();
        let mut settings = DebugSettings {
            protobuf_enabled: true,
            ..arrow_settings(dir.path())
        };
        settings.max_file_size = Some(1);
        let table = "x".repeat(250);
        let writer = DebugWriter::new(settings, &table).unwrap();
        let descriptor = row_descriptor("Row");
        for i in 0..3 {
            writer.write_arrow(&id_batch(i, 1)).unwrap();
            let record = encode_row(&descriptor, i, "r");
            writer
                .write_protobuf(&descriptor, [record.as_slice()])
                .unwrap();
        }

        for dir in [writer.arrow_dir(), writer.proto_dir()] {
            let mut names: Vec<_> = fs::read_dir(dir)
                .unwrap()
                .map(|e| e.unwrap().file_name().into_string().unwrap())
                .collect();
            names.sort();
            assert!(names.len() >= 3, "{names:?}");
            for name in &names {
                assert!(name.len() <= 255, "{} bytes", name.len());
                let stem = name.rsplit_once('.').unwrap().0;
                let number = stem.rsplit_once('_').unwrap().1;
                assert!(["1", "2", "3"].contains(&number), "{name}");
            }
        }
        let files = arrow_files_in_order(&writer);
        let read: Vec<_> = files.iter().flat_map(|f| read_stream(f)).collect();
        assert_eq!(read, (0..3).map(|i| id_batch(i, 1)).collect::<Vec<_>>());
    }

    #[test]
    fn concurrent_writes_all_land() {
        let dir = tempfile::tempdir().unwrap();
        let mut settings = DebugSettings {
            protobuf_enabled: true,
            ..arrow_settings(dir.path())
        };
        settings.max_file_size = Some(4_096);
        settings.flush_interval = Duration::ZERO;
        let writer = Arc::new(DebugWriter::new(settings, "t").unwrap());
        let descriptor = Arc::new(row_descriptor("Row"));

        let threads: Vec<_> = (0..8)
            .map(|t| {
                let writer = Arc::clone(&writer);
                let descriptor = Arc::clone(&descriptor);
                std::thread::spawn(move || {
                    for i in 0..25 {
                        writer
                            .write_arrow(&id_batch(t * 1000 + i * 10, 10))
                            .unwrap();
                        let records: Vec<_> =
                            (0..10).map(|r| encode_row(&descriptor, r, "c")).collect();
                        writer
                            .write_protobuf(&descriptor, records.iter().map(Vec::as_slice))
                            .unwrap();
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        writer.shutdown().unwrap();

        let arrow_files = arrow_files_in_order(&writer);
        assert!(arrow_files.len() > 1);
        let mut ids: Vec<i64> = arrow_files
            .iter()
            .flat_map(|f| read_stream(f))
            .flat_map(|batch| {
                let column = batch.column(0).clone();
                let ids = column
                    .as_any()
                    .downcast_ref::<arrow::array::Int64Array>()
                    .unwrap()
                    .values()
                    .to_vec();
                ids
            })
            .collect();
        ids.sort_unstable();
        let mut expected: Vec<i64> = (0..8)
            .flat_map(|t| (0..250).map(move |r| t * 1000 + r))
            .collect();
        expected.sort_unstable();
        assert_eq!(ids, expected);

        let records: usize = proto_files_in_order(&writer)
            .iter()
            .map(|f| read_delimited(f).len())
            .sum();
        assert_eq!(records, 8 * 25 * 10);
    }

    #[test]
    fn a_panicking_record_iterator_does_not_break_the_writer() {
        let dir = tempfile::tempdir().unwrap();
        let writer = DebugWriter::new(proto_settings(dir.path()), "t").unwrap();
        let descriptor = row_descriptor("Row");
        let record = encode_row(&descriptor, 1, "ok");

        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let records = (0..2).map(|i| {
                assert!(i == 0, "boom");
                record.as_slice()
            });
            writer.write_protobuf(&descriptor, records)
        }));
        assert!(panicked.is_err());

        writer
            .write_protobuf(&descriptor, [record.as_slice()])
            .unwrap();
        writer.shutdown().unwrap();
        // The abandoned file was rotated aside; the new one holds only the new record.
        assert_eq!(read_delimited(&writer.active_proto_path()), vec![record]);
        assert_eq!(proto_files_in_order(&writer).len(), 2);
    }
}
