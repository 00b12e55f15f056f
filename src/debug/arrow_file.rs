//! Arrow debug output: one Arrow IPC *stream* (`.arrows`) per table.
//!
//! An IPC stream carries exactly one schema, so a batch with a different schema
//! rotates the file first. Rotation and shutdown write the end-of-stream marker
//! (`finish`); a flushed but unfinished stream is still readable up to the last
//! complete batch.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use arrow::datatypes::SchemaRef;
use arrow::error::ArrowError;
use arrow::ipc::writer::StreamWriter;
use arrow::record_batch::RecordBatch;
use tracing::warn;

use super::active::ActiveFile;
use super::rotation::RotatingFile;
use crate::error::ZerobusError;

/// Extension of Arrow debug files; DuckDB reads `.arrows` by replacement scan.
pub(crate) const ARROW_EXT: &str = "arrows";

/// The Arrow writer of one table. Not thread-safe by itself; `DebugWriter` wraps it in a `Mutex`.
#[derive(Debug)]
pub(crate) struct ArrowSink {
    file: RotatingFile,
    flush_interval: Duration,
    active: Option<ActiveStream>,
}

struct ActiveStream {
    writer: StreamWriter<ActiveFile>,
    schema: SchemaRef,
}

impl std::fmt::Debug for ActiveStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ActiveStream")
            .field("file", self.writer.get_ref())
            .finish_non_exhaustive()
    }
}

impl ArrowSink {
    pub(crate) fn new(file: RotatingFile, flush_interval: Duration) -> Self {
        Self {
            file,
            flush_interval,
            active: None,
        }
    }

    /// Appends `batch`, rotating before (schema change, age) or after (size) as needed.
    ///
    /// If writing fails, the active stream is abandoned: the next write rotates
    /// the partial file aside and starts a clean one, rather than appending to a
    /// stream that may end in half a message.
    pub(crate) fn write(&mut self, batch: &RecordBatch) -> Result<(), ZerobusError> {
        if self.must_rotate_before(batch.schema_ref()) {
            self.rotate()?;
        }
        let mut stream = match self.active.take() {
            Some(stream) => stream,
            None => self.open(batch.schema())?,
        };
        stream
            .append(batch, self.flush_interval)
            .map_err(|err| arrow_error(self.file.active_path(), err))?;
        let full = self
            .file
            .policy()
            .full(stream.writer.get_ref().bytes_written());
        self.active = Some(stream);
        if full {
            self.rotate()?;
        }
        Ok(())
    }

    fn must_rotate_before(&self, schema: &SchemaRef) -> bool {
        self.active.as_ref().is_some_and(|stream| {
            let changed = !Arc::ptr_eq(&stream.schema, schema) && stream.schema != *schema;
            changed || self.file.policy().expired(stream.writer.get_ref().age())
        })
    }

    /// Starts a new stream, first rotating aside any file left at the active
    /// path (a previous run, or this writer before `shutdown`).
    fn open(&self, schema: SchemaRef) -> Result<ActiveStream, ZerobusError> {
        self.file.rotate_existing()?;
        let path = self.file.active_path();
        let file = ActiveFile::create(path)?;
        match StreamWriter::try_new(file, &schema) {
            Ok(writer) => Ok(ActiveStream { writer, schema }),
            Err(err) => {
                // Typically a schema IPC cannot carry; don't leave an empty file
                // behind to be rotated into the history on the next write.
                let _ = std::fs::remove_file(path);
                Err(arrow_error(path, err))
            }
        }
    }

    /// Finishes the active stream and renames it to its rotated name.
    fn rotate(&mut self) -> Result<(), ZerobusError> {
        let finished = self.finish();
        // Rename even if finishing failed: the next write should start clean.
        let rotated = self.file.rotate_existing();
        finished.and(rotated).map(drop)
    }

    /// Writes buffered bytes to disk, so readers see every batch written so far.
    pub(crate) fn flush(&mut self) -> Result<(), ZerobusError> {
        let Some(mut stream) = self.active.take() else {
            return Ok(());
        };
        stream
            .writer
            .flush()
            .map_err(|err| arrow_error(self.file.active_path(), err))?;
        self.active = Some(stream);
        Ok(())
    }

    /// Writes the end-of-stream marker and closes the active file, leaving it at the active path.
    pub(crate) fn finish(&mut self) -> Result<(), ZerobusError> {
        match self.active.take() {
            Some(mut stream) => stream
                .writer
                .finish()
                .map_err(|err| arrow_error(self.file.active_path(), err)),
            None => Ok(()),
        }
    }

    /// Drops the active stream without finishing it; used after a panic left
    /// its state unknown. The file is rotated aside by the next write.
    pub(crate) fn abandon(&mut self) {
        self.active = None;
    }
}

impl ActiveStream {
    fn append(&mut self, batch: &RecordBatch, flush_interval: Duration) -> Result<(), ArrowError> {
        self.writer.write(batch)?;
        if self.writer.get_ref().flush_due(flush_interval) {
            self.writer.flush()?;
        }
        Ok(())
    }
}

impl Drop for ArrowSink {
    /// Finishes the stream so a dropped writer still leaves a complete file.
    fn drop(&mut self) {
        if let Err(err) = self.finish() {
            warn!(error = %err, "could not finish Arrow debug file on drop");
        }
    }
}

/// Keeps I/O failures as [`ZerobusError::IoError`] naming the file; other Arrow
/// errors (an unsupported type, say) go through `From<ArrowError>`.
fn arrow_error(path: &Path, err: ArrowError) -> ZerobusError {
    match err {
        ArrowError::IoError(_, source) => ZerobusError::io(path, source),
        other => ZerobusError::from(other),
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::super::DebugWriter;
    use std::fs::File;

    #[test]
    fn batches_read_back_equal() {
        let dir = tempfile::tempdir().unwrap();
        let writer = DebugWriter::new(arrow_settings(dir.path()), "cat.sch.tbl").unwrap();
        let batches: Vec<_> = (0..3).map(|i| id_batch(i * 10, 10)).collect();
        for batch in &batches {
            writer.write_arrow(batch).unwrap();
        }
        writer.shutdown().unwrap();

        let path = writer.active_arrow_path();
        assert_eq!(path, dir.path().join("zerobus/arrow/cat.sch.tbl.arrows"));
        assert_eq!(read_stream(&path), batches);
    }

    #[test]
    fn flushed_stream_is_readable_before_finish() {
        let dir = tempfile::tempdir().unwrap();
        let mut settings = arrow_settings(dir.path());
        settings.flush_interval = std::time::Duration::from_secs(3600);
        let writer = DebugWriter::new(settings, "t").unwrap();
        let batches = vec![id_batch(0, 4), id_batch(4, 4)];
        for batch in &batches {
            writer.write_arrow(batch).unwrap();
        }
        writer.flush().unwrap();

        // No end-of-stream marker yet: the reader stops cleanly at the end of the data.
        assert_eq!(read_stream(&writer.active_arrow_path()), batches);
        writer.write_arrow(&id_batch(8, 1)).unwrap();
        writer.flush().unwrap();
        assert_eq!(read_stream(&writer.active_arrow_path()).len(), 3);
    }

    #[test]
    fn schema_change_rotates() {
        let dir = tempfile::tempdir().unwrap();
        let writer = DebugWriter::new(arrow_settings(dir.path()), "t").unwrap();
        let first = id_batch(0, 3);
        let second = name_batch(&["a", "b"]);
        writer.write_arrow(&first).unwrap();
        writer.write_arrow(&first).unwrap();
        writer.write_arrow(&second).unwrap();
        writer.shutdown().unwrap();

        let files = arrow_files_in_order(&writer);
        assert_eq!(files.len(), 2, "{files:?}");
        assert_eq!(read_stream(&files[0]), vec![first.clone(), first]);
        assert_eq!(read_stream(&files[1]), vec![second]);
    }

    #[test]
    fn size_rotation_splits_but_keeps_every_batch_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let mut settings = arrow_settings(dir.path());
        settings.max_file_size = Some(2_000);
        let writer = DebugWriter::new(settings, "t").unwrap();
        let batches: Vec<_> = (0..20).map(|i| id_batch(i * 50, 50)).collect();
        for batch in &batches {
            writer.write_arrow(batch).unwrap();
        }
        writer.shutdown().unwrap();

        let files = arrow_files_in_order(&writer);
        assert!(files.len() >= 3, "{files:?}");
        let read: Vec<_> = files.iter().flat_map(|f| read_stream(f)).collect();
        assert_eq!(read, batches);
        for file in &files[..files.len() - 1] {
            // Rotation happens on the write that reaches the limit, so a file may
            // exceed it by at most one batch.
            assert!(std::fs::metadata(file).unwrap().len() >= 2_000);
        }
    }

    #[test]
    fn age_rotation_starts_a_new_file() {
        let dir = tempfile::tempdir().unwrap();
        let mut settings = arrow_settings(dir.path());
        settings.rotation_interval = Some(std::time::Duration::from_millis(1));
        let writer = DebugWriter::new(settings, "t").unwrap();
        for i in 0..3 {
            writer.write_arrow(&id_batch(i, 1)).unwrap();
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        writer.shutdown().unwrap();

        let files = arrow_files_in_order(&writer);
        assert_eq!(files.len(), 3, "{files:?}");
        for (i, file) in files.iter().enumerate() {
            assert_eq!(read_stream(file), vec![id_batch(i as i64, 1)]);
        }
    }

    #[test]
    fn write_after_shutdown_keeps_the_old_file() {
        let dir = tempfile::tempdir().unwrap();
        let writer = DebugWriter::new(arrow_settings(dir.path()), "t").unwrap();
        writer.write_arrow(&id_batch(0, 2)).unwrap();
        writer.shutdown().unwrap();
        writer.write_arrow(&id_batch(2, 2)).unwrap();
        writer.shutdown().unwrap();

        let files = arrow_files_in_order(&writer);
        assert_eq!(files.len(), 2);
        assert_eq!(read_stream(&files[0]), vec![id_batch(0, 2)]);
        assert_eq!(read_stream(&files[1]), vec![id_batch(2, 2)]);
    }

    #[test]
    fn dropping_the_writer_finishes_the_stream() {
        let dir = tempfile::tempdir().unwrap();
        let writer = DebugWriter::new(arrow_settings(dir.path()), "t").unwrap();
        writer.write_arrow(&id_batch(0, 2)).unwrap();
        let path = writer.active_arrow_path();
        drop(writer);

        let bytes = std::fs::read(&path).unwrap();
        // The IPC end-of-stream marker: continuation token, then a zero length.
        assert_eq!(
            bytes[bytes.len() - 8..],
            [0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0]
        );
        let reader = arrow::ipc::reader::StreamReader::try_new(File::open(&path).unwrap(), None);
        assert_eq!(reader.unwrap().count(), 1);
    }
}
