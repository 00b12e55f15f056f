//! The open active file shared by both formats: buffered, byte-counting, and
//! aware of its age and of when it was last flushed.

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use crate::error::ZerobusError;

/// A freshly created file being written through a `BufWriter`.
///
/// It counts the bytes handed to it (buffered or not), which is the size the
/// file will have once flushed: the number rotation by size compares against,
/// without a `stat` per write.
#[derive(Debug)]
pub(crate) struct ActiveFile {
    out: BufWriter<File>,
    bytes: u64,
    opened: Instant,
    last_flush: Instant,
}

impl ActiveFile {
    /// Creates `path`, which must not exist yet: the caller rotates any earlier
    /// file away first, so debug data is never silently overwritten.
    pub(crate) fn create(path: &Path) -> Result<Self, ZerobusError> {
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)
            .map_err(|err| ZerobusError::io(path, err))?;
        let now = Instant::now();
        Ok(Self {
            out: BufWriter::new(file),
            bytes: 0,
            opened: now,
            last_flush: now,
        })
    }

    /// Bytes written so far, including those still buffered.
    pub(crate) fn bytes_written(&self) -> u64 {
        self.bytes
    }

    /// Time since the file was created.
    pub(crate) fn age(&self) -> Duration {
        self.opened.elapsed()
    }

    /// Whether the buffer has not been flushed for `interval` or longer.
    pub(crate) fn flush_due(&self, interval: Duration) -> bool {
        self.last_flush.elapsed() >= interval
    }
}

impl Write for ActiveFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let written = self.out.write(buf)?;
        self.bytes += written as u64;
        Ok(written)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()?;
        self.last_flush = Instant::now();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_buffered_bytes_and_refuses_to_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.pb");
        let mut file = ActiveFile::create(&path).unwrap();
        file.write_all(b"hello").unwrap();
        assert_eq!(file.bytes_written(), 5);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 0, "still buffered");
        assert!(file.flush_due(Duration::ZERO));
        file.flush().unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 5);
        assert!(!file.flush_due(Duration::from_secs(3600)));

        let err = ActiveFile::create(&path).unwrap_err();
        assert!(matches!(err, ZerobusError::IoError { path: p, .. } if p == path));
    }
}
