//! One server per data directory: an advisory lock on `<data_dir>/.zerobus-local.lock`,
//! held while the server runs.
//!
//! Two servers on one directory would both write its Delta tables (the second one's new
//! table makes the first one's commits fail). The lock is the operating system's file
//! lock (`flock` on Unix, `LockFileEx` on Windows), so it is released when the server
//! stops or its process dies, and it also keeps two servers of one process apart.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};

use crate::error::LocalError;

/// The lock file's name in the data directory.
pub(crate) const LOCK_FILE: &str = ".zerobus-local.lock";

/// The lock on a data directory; released when dropped.
#[derive(Debug)]
pub(crate) struct DirLock {
    _file: File,
}

impl DirLock {
    /// Creates `dir` if needed and locks it.
    ///
    /// # Errors
    /// [`LocalError::DataDirInUse`] if another server holds the lock; [`LocalError::Io`]
    /// if the directory or the lock file cannot be made, or the lock cannot be taken.
    pub(crate) fn acquire(dir: &Path) -> Result<Self, LocalError> {
        std::fs::create_dir_all(dir).map_err(|e| LocalError::io(dir, e))?;
        let path = dir.join(LOCK_FILE);
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| LocalError::io(&path, e))?;
        match file.try_lock() {
            Ok(()) => Ok(Self { _file: file }),
            Err(TryLockError::WouldBlock) => Err(LocalError::DataDirInUse {
                dir: PathBuf::from(dir),
            }),
            Err(TryLockError::Error(e)) => Err(LocalError::io(path, e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_locked_directory_is_refused_until_released() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let first = DirLock::acquire(&data).unwrap();
        let err = DirLock::acquire(&data).unwrap_err();
        assert!(matches!(&err, LocalError::DataDirInUse { dir } if *dir == data));
        assert!(
            err.to_string().contains(&data.display().to_string()),
            "{err}"
        );
        drop(first);
        DirLock::acquire(&data).unwrap();
    }
}
