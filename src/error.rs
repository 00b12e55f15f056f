//! The one error type of the crate, [`ZerobusError`], and its [`Result`] alias.
//!
//! Every failure, from a bad option to a row that cannot be encoded, is a
//! [`ZerobusError`]. [`ZerobusError::is_retryable`] says whether trying the same
//! thing again can succeed; the answer is spelled out for every variant.

use std::fmt;
use std::ops::Deref;
use std::path::PathBuf;
use std::sync::Arc;

/// `Result` with [`ZerobusError`] as the error type.
pub type Result<T, E = ZerobusError> = std::result::Result<T, E>;

/// What kind of conversion problem a [`ConversionFailure`] describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ConversionErrorKind {
    /// An Arrow type with no Delta / Zerobus equivalent (Time, Duration, Interval, Union, ...).
    UnsupportedType,
    /// A column or struct field name that Zerobus does not accept.
    InvalidColumnName,
    /// More top-level columns than Zerobus allows (2000).
    TooManyColumns,
    /// Struct / list / map nesting deeper than the supported bound.
    NestingTooDeep,
    /// One encoded record is larger than the per-record size limit.
    RecordTooLarge,
    /// A list holds a null element; protobuf `repeated` fields cannot represent it.
    NullListElement,
    /// A map holds a null value; a protobuf map entry cannot tell it from the default value.
    NullMapValue,
    /// A column (or struct field) declared NOT NULL holds a null.
    NullInNonNullableColumn,
    /// A value does not fit the target type (for example a `UInt64` above `i64::MAX`).
    ValueOutOfRange,
    /// A batch's schema is not the one the encoder was built for.
    SchemaMismatch,
    /// Anything else.
    Other,
}

impl ConversionErrorKind {
    /// A short stable name, e.g. `"RecordTooLarge"`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::UnsupportedType => "UnsupportedType",
            Self::InvalidColumnName => "InvalidColumnName",
            Self::TooManyColumns => "TooManyColumns",
            Self::NestingTooDeep => "NestingTooDeep",
            Self::RecordTooLarge => "RecordTooLarge",
            Self::NullListElement => "NullListElement",
            Self::NullMapValue => "NullMapValue",
            Self::NullInNonNullableColumn => "NullInNonNullableColumn",
            Self::ValueOutOfRange => "ValueOutOfRange",
            Self::SchemaMismatch => "SchemaMismatch",
            Self::Other => "Other",
        }
    }
}

impl fmt::Display for ConversionErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A conversion failure: what went wrong (`kind`), where (`column`, `row`), and a
/// human-readable `message` that names both.
///
/// It dereferences to its message, so code written against the original wrapper's
/// `ConversionError(String)` (`msg.contains("exceeds Zerobus limit")`) keeps working,
/// while new code can match on the structured fields.
///
/// ```
/// use arrow_zerobus_sdk_wrapper::{ConversionErrorKind, ConversionFailure};
///
/// let failure = ConversionFailure::new(ConversionErrorKind::ValueOutOfRange, "u64 too large")
///     .with_column("id")
///     .with_row(7);
/// assert_eq!(failure.column.as_deref(), Some("id"));
/// assert!(failure.contains("too large"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConversionFailure {
    /// The kind of problem.
    pub kind: ConversionErrorKind,
    /// The column (path for nested fields, e.g. `address.zip`), when one is at fault.
    pub column: Option<String>,
    /// The row index in the input batch, for per-row failures.
    pub row: Option<usize>,
    /// The full message, naming the column, row and limit at fault.
    pub message: String,
}

impl ConversionFailure {
    /// A failure of `kind` with `message`.
    pub fn new(kind: ConversionErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            column: None,
            row: None,
            message: message.into(),
        }
    }

    /// Sets the column at fault.
    pub fn with_column(mut self, column: impl Into<String>) -> Self {
        self.column = Some(column.into());
        self
    }

    /// Sets the row at fault.
    pub fn with_row(mut self, row: usize) -> Self {
        self.row = Some(row);
        self
    }
}

impl Deref for ConversionFailure {
    type Target = str;

    fn deref(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for ConversionFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl From<String> for ConversionFailure {
    fn from(message: String) -> Self {
        Self::new(ConversionErrorKind::Other, message)
    }
}

impl From<&str> for ConversionFailure {
    fn from(message: &str) -> Self {
        Self::new(ConversionErrorKind::Other, message)
    }
}

/// Every error the wrapper returns.
///
/// The variant names are those of the original wrapper; new variants may be added
/// (`#[non_exhaustive]`). Use [`ZerobusError::is_retryable`] to decide whether to try again.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum ZerobusError {
    /// An option is missing or invalid. The message names the option and the rule.
    #[error("Configuration error: {0}")]
    ConfigurationError(String),

    /// Credentials were rejected (wrong client id or secret, expired or unknown token).
    #[error("Authentication error: {0}")]
    AuthenticationError(String),

    /// The Zerobus endpoint could not be reached or the connection broke.
    #[error("Connection error: {0}")]
    ConnectionError(String),

    /// Arrow data could not be turned into Zerobus records: an unsupported type, a bad
    /// column name, a value out of range, a record over the size limit, ...
    #[error("Conversion error: {0}")]
    ConversionError(ConversionFailure),

    /// Records were sent but not acknowledged.
    #[error("Transmission error: {0}")]
    TransmissionError(String),

    /// All retry attempts were used up; the message carries the last error.
    #[error("Retry exhausted: {0}")]
    RetryExhausted(String),

    /// A new OAuth token could not be obtained.
    #[error("Token refresh error: {0}")]
    TokenRefreshError(String),

    /// Reading or writing a local file (debug output, configuration file) failed.
    #[error("I/O error on {path}: {source}")]
    IoError {
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: Arc<std::io::Error>,
    },

    /// The wrapper was used after [`shutdown`](crate::ZerobusWrapper::shutdown).
    #[error("Wrapper is shut down: {0}")]
    ShutdownError(String),
}

impl ZerobusError {
    /// Whether the same operation may succeed if tried again.
    ///
    /// | variant | retryable | why |
    /// |---|---|---|
    /// | `ConnectionError` | yes | networks recover |
    /// | `TransmissionError` | yes | unacknowledged records can be resent |
    /// | `TokenRefreshError` | yes | token endpoints have transient failures |
    /// | `ConfigurationError` | no | the configuration must change |
    /// | `AuthenticationError` | no | the credentials must change |
    /// | `ConversionError` | no | the data must change |
    /// | `RetryExhausted` | no | retrying already happened |
    /// | `IoError` | no | the file system needs attention |
    /// | `ShutdownError` | no | the wrapper is closed |
    ///
    /// ```
    /// use arrow_zerobus_sdk_wrapper::ZerobusError;
    ///
    /// assert!(ZerobusError::ConnectionError("reset".into()).is_retryable());
    /// assert!(!ZerobusError::ConfigurationError("table_name: empty".into()).is_retryable());
    /// ```
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::ConnectionError(_) | Self::TransmissionError(_) | Self::TokenRefreshError(_) => {
                true
            }
            Self::ConfigurationError(_)
            | Self::AuthenticationError(_)
            | Self::ConversionError(_)
            | Self::RetryExhausted(_)
            | Self::IoError { .. }
            | Self::ShutdownError(_) => false,
        }
    }

    /// Whether the error suggests an expired or rejected token.
    pub fn is_token_expired(&self) -> bool {
        matches!(self, Self::AuthenticationError(_))
    }

    /// The variant name, e.g. `"ConversionError"`: the key used by
    /// [`TransmissionResult::group_errors_by_type`](crate::TransmissionResult::group_errors_by_type).
    pub fn error_type(&self) -> &'static str {
        match self {
            Self::ConfigurationError(_) => "ConfigurationError",
            Self::AuthenticationError(_) => "AuthenticationError",
            Self::ConnectionError(_) => "ConnectionError",
            Self::ConversionError(_) => "ConversionError",
            Self::TransmissionError(_) => "TransmissionError",
            Self::RetryExhausted(_) => "RetryExhausted",
            Self::TokenRefreshError(_) => "TokenRefreshError",
            Self::IoError { .. } => "IoError",
            Self::ShutdownError(_) => "ShutdownError",
        }
    }

    /// The conversion details, if this is a [`ZerobusError::ConversionError`].
    pub fn conversion_failure(&self) -> Option<&ConversionFailure> {
        match self {
            Self::ConversionError(failure) => Some(failure),
            _ => None,
        }
    }

    /// Shorthand for a [`ZerobusError::ConversionError`] of `kind`.
    pub fn conversion(kind: ConversionErrorKind, message: impl Into<String>) -> Self {
        Self::ConversionError(ConversionFailure::new(kind, message))
    }

    /// This per-row error with row `from` called `to` instead: the failure's row and a
    /// message that starts with `row {from}` followed by `,` or `:` (as every per-row
    /// message of the encoder and the transport does). For rows numbered in a batch the
    /// caller never saw (the Unity Catalog check's filtered batch).
    pub(crate) fn renumbered(self, from: usize, to: usize) -> Self {
        let renumber = |message: String| {
            let prefix = format!("row {from}");
            match message.strip_prefix(&prefix) {
                Some(rest) if rest.starts_with([',', ':']) => format!("row {to}{rest}"),
                _ => message,
            }
        };
        match self {
            Self::ConversionError(mut failure) => {
                if failure.row == Some(from) {
                    failure.row = Some(to);
                }
                failure.message = renumber(failure.message);
                Self::ConversionError(failure)
            }
            Self::TransmissionError(message) => Self::TransmissionError(renumber(message)),
            other => other,
        }
    }

    /// Shorthand for an [`ZerobusError::IoError`] on `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::IoError {
            path: path.into(),
            source: Arc::new(source),
        }
    }
}

impl From<ConversionFailure> for ZerobusError {
    fn from(failure: ConversionFailure) -> Self {
        Self::ConversionError(failure)
    }
}

impl From<arrow::error::ArrowError> for ZerobusError {
    fn from(error: arrow::error::ArrowError) -> Self {
        Self::ConversionError(ConversionFailure::new(
            ConversionErrorKind::Other,
            format!("Arrow error: {error}"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renumbering_changes_the_row_of_per_row_messages_only() {
        let failure = ConversionFailure::new(
            ConversionErrorKind::ValueOutOfRange,
            "row 4, column `n`: 300 does not fit TINYINT",
        )
        .with_column("n")
        .with_row(4);
        let moved = ZerobusError::ConversionError(failure).renumbered(4, 6);
        let failure = moved
            .conversion_failure()
            .expect("still a conversion error");
        assert_eq!(failure.row, Some(6));
        assert_eq!(
            failure.message,
            "row 6, column `n`: 300 does not fit TINYINT"
        );

        let rejected = ZerobusError::TransmissionError("row 4: rejected by the server".into());
        assert_eq!(
            rejected.renumbered(4, 9).to_string(),
            "Transmission error: row 9: rejected by the server"
        );
        // Another row's number, or a message without one, is left alone.
        let other = ZerobusError::TransmissionError("row 40: rejected".into());
        assert_eq!(
            other.renumbered(4, 9).to_string(),
            "Transmission error: row 40: rejected"
        );
        let whole = ZerobusError::RetryExhausted("after 5 attempts: row 4".into());
        assert_eq!(
            whole.renumbered(4, 9).to_string(),
            "Retry exhausted: after 5 attempts: row 4"
        );
    }

    #[test]
    fn conversion_failure_derefs_to_its_message() {
        let err = ZerobusError::conversion(
            ConversionErrorKind::RecordTooLarge,
            "row 3: record of 20 bytes exceeds Zerobus limit of 10 bytes",
        );
        let ZerobusError::ConversionError(msg) = &err else {
            panic!("expected a conversion error, got {err:?}")
        };
        assert!(msg.contains("exceeds Zerobus limit"));
        assert_eq!(msg.kind, ConversionErrorKind::RecordTooLarge);
        assert_eq!(
            err.to_string(),
            "Conversion error: row 3: record of 20 bytes exceeds Zerobus limit of 10 bytes"
        );
    }

    #[test]
    fn retryability_is_explicit() {
        let retryable = [
            ZerobusError::ConnectionError(String::new()),
            ZerobusError::TransmissionError(String::new()),
            ZerobusError::TokenRefreshError(String::new()),
        ];
        let terminal = [
            ZerobusError::ConfigurationError(String::new()),
            ZerobusError::AuthenticationError(String::new()),
            ZerobusError::ConversionError("x".into()),
            ZerobusError::RetryExhausted(String::new()),
            ZerobusError::io("/tmp/x", std::io::Error::other("disk full")),
            ZerobusError::ShutdownError(String::new()),
        ];
        assert!(retryable.iter().all(ZerobusError::is_retryable));
        assert!(!terminal.iter().any(ZerobusError::is_retryable));
        assert_eq!(terminal[2].error_type(), "ConversionError");
    }
}
