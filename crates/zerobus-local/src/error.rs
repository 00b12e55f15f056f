//! The one error type of the local server, [`LocalError`].
//!
//! These are the errors of the server's own Rust API (starting it, reading a table back);
//! what a client sees on the wire is a gRPC status, never a `LocalError`.

use std::path::PathBuf;

/// `Result` with [`LocalError`] as the error type.
pub type Result<T, E = LocalError> = std::result::Result<T, E>;

/// Every error of [`LocalZerobus`](crate::LocalZerobus)'s Rust API.
///
/// ```
/// use zerobus_local::LocalError;
///
/// let e = LocalError::UnknownTable("main.demo.events".into());
/// assert_eq!(e.to_string(), "local Zerobus: no table main.demo.events");
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LocalError {
    /// A port could not be bound, or its address read.
    #[error("local Zerobus: cannot listen on the {service} port {port}: {source}")]
    Listen {
        /// `gRPC` or `HTTP`.
        service: &'static str,
        /// The port asked for (0: any free port).
        port: u16,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Reading or writing the data directory (or the temporary one) failed.
    #[error("local Zerobus: {}: {source}", path.display())]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Another server (in this process or another) is using the data directory: only one
    /// server at a time may write its Delta tables.
    #[error(
        "local Zerobus: the data directory {} is in use by another server (it holds the \
         lock {}); stop it or use another directory",
        dir.display(),
        dir.join(crate::dirlock::LOCK_FILE).display()
    )]
    DataDirInUse {
        /// The data directory.
        dir: PathBuf,
    },
    /// A table given up front, or found in the data directory, cannot be served: an
    /// invalid name or schema, or a Delta table whose schema differs from the declared one.
    #[error("local Zerobus: table {table}: {reason}")]
    Table {
        /// `catalog.schema.table`.
        table: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A Delta table could not be opened or read.
    #[error("local Zerobus: Delta table {table}: {source}")]
    Delta {
        /// `catalog.schema.table`, or the table's directory.
        table: String,
        /// Why.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// Landed rows could not be put together into one batch.
    #[error("local Zerobus: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
    /// No table of that name exists on the server.
    #[error("local Zerobus: no table {0}")]
    UnknownTable(String),
}

impl LocalError {
    /// A [`LocalError::Table`] error.
    pub(crate) fn table(table: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::Table {
            table: table.into(),
            reason: reason.into(),
        }
    }

    /// A [`LocalError::Delta`] error.
    pub(crate) fn delta(
        table: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        Self::Delta {
            table: table.into(),
            source: source.into(),
        }
    }

    /// A [`LocalError::Io`] error.
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }
}
