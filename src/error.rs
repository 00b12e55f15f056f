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

/// The or-pattern of every [`ZerobusError`] variant with a `message: String` field,
/// binding it to `$message` (by reference or mutable reference, as the matched value is).
macro_rules! message_variants {
    ($message:ident) => {
        ZerobusError::ConfigurationError {
            message: $message,
            ..
        } | ZerobusError::AuthenticationError {
            message: $message,
            ..
        } | ZerobusError::ConnectionError {
            message: $message,
            ..
        } | ZerobusError::TransmissionError {
            message: $message,
            ..
        } | ZerobusError::RetryExhausted {
            message: $message,
            ..
        } | ZerobusError::TokenRefreshError {
            message: $message,
            ..
        } | ZerobusError::ArrowError {
            message: $message,
            ..
        } | ZerobusError::ShutdownError { message: $message }
    };
}

/// The cause a [`ZerobusError`] wraps: the official SDK's error, a `tonic::Status`, an
/// [`ArrowError`](arrow::error::ArrowError), an I/O or HTTP error, or another
/// `ZerobusError`. Shared, so that the error stays `Clone` (one error can fail many rows).
///
/// It dereferences to the error it holds, and [`Error::source`](std::error::Error::source)
/// of a `ZerobusError` returns that error itself, so `downcast_ref` finds it.
pub struct Cause<E: ?Sized + 'static = dyn std::error::Error + Send + Sync>(Arc<E>);

impl<E: std::error::Error + Send + Sync + 'static> From<E> for Cause {
    fn from(error: E) -> Self {
        Self(Arc::new(error))
    }
}

impl<E> Cause<E> {
    /// Shares `error`.
    pub fn new(error: E) -> Self {
        Self(Arc::new(error))
    }
}

impl<E: ?Sized> Clone for Cause<E> {
    fn clone(&self) -> Self {
        Self(Arc::clone(&self.0))
    }
}

impl<E: ?Sized> Deref for Cause<E> {
    type Target = E;

    fn deref(&self) -> &E {
        &self.0
    }
}

impl<E: ?Sized + fmt::Debug> fmt::Debug for Cause<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl<E: ?Sized + fmt::Display> fmt::Display for Cause<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Every error the wrapper returns.
///
/// The variant names are those of the original wrapper; new variants may be added
/// (`#[non_exhaustive]`). Use [`ZerobusError::is_retryable`] to decide whether to try again.
///
/// The message of each variant says what failed and already includes the text of its
/// cause; [`source()`](std::error::Error::source) gives the cause itself, for code that
/// wants to downcast it (to the SDK's error, `tonic::Status`, `ArrowError`, `io::Error`).
/// Row numbers are never part of a message: a per-row error is paired with its row in
/// [`TransmissionResult::failed_rows`](crate::TransmissionResult::failed_rows), and a
/// [`ConversionFailure`] also has it in its `row` field.
///
/// ```
/// use std::error::Error as _;
/// use arrow_zerobus_sdk_wrapper::ZerobusError;
///
/// let io = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset by peer");
/// let error = ZerobusError::connection("stream to main.demo.events: reset by peer")
///     .with_source(io);
/// assert!(error.is_retryable());
/// let cause = error.source().and_then(|c| c.downcast_ref::<std::io::Error>());
/// assert_eq!(cause.map(|io| io.kind()), Some(std::io::ErrorKind::ConnectionReset));
/// ```
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum ZerobusError {
    /// An option is missing or invalid. The message names the option and the rule.
    #[error("Configuration error: {message}")]
    ConfigurationError {
        /// What is wrong, naming the option.
        message: String,
        /// The underlying error, if any (a YAML parser's, the SDK's).
        #[source]
        source: Option<Cause>,
    },

    /// Credentials were rejected (wrong client id or secret, expired or unknown token).
    #[error("Authentication error: {message}")]
    AuthenticationError {
        /// What was rejected.
        message: String,
        /// The underlying error (the SDK's, an HTTP status).
        #[source]
        source: Option<Cause>,
    },

    /// The Zerobus endpoint could not be reached or the connection broke.
    #[error("Connection error: {message}")]
    ConnectionError {
        /// What could not be reached.
        message: String,
        /// The underlying error (the SDK's, `tonic::Status`, an HTTP client's).
        #[source]
        source: Option<Cause>,
    },

    /// Arrow data could not be turned into Zerobus records: an unsupported type, a bad
    /// column name, a value out of range, a record over the size limit, ...
    #[error("Conversion error: {0}")]
    ConversionError(ConversionFailure),

    /// Records were sent but not acknowledged, or the server refused them.
    #[error("Transmission error: {message}")]
    TransmissionError {
        /// What happened to the records.
        message: String,
        /// The underlying error (the SDK's, `tonic::Status`).
        #[source]
        source: Option<Cause>,
    },

    /// All retry attempts were used up; the message and the source carry the last error.
    #[error("Retry exhausted: {message}")]
    RetryExhausted {
        /// What was tried, how often, and the last error.
        message: String,
        /// The last error.
        #[source]
        source: Option<Cause>,
    },

    /// A new OAuth token could not be obtained.
    #[error("Token refresh error: {message}")]
    TokenRefreshError {
        /// Why.
        message: String,
        /// The underlying error (the SDK's, an HTTP client's).
        #[source]
        source: Option<Cause>,
    },

    /// An Arrow operation on a batch failed (writing an IPC debug file, a cast, selecting
    /// rows).
    #[error("Arrow error: {message}")]
    ArrowError {
        /// What was being done, and Arrow's message.
        message: String,
        /// Arrow's error.
        #[source]
        source: Cause<arrow::error::ArrowError>,
    },

    /// Reading or writing a local file (debug output, configuration file) failed.
    #[error("I/O error on {path}: {source}")]
    IoError {
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: Cause<std::io::Error>,
    },

    /// The wrapper was used after [`shutdown`](crate::ZerobusWrapper::shutdown).
    #[error("Wrapper is shut down: {message}")]
    ShutdownError {
        /// What was attempted.
        message: String,
    },
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
    /// | `ArrowError` | no | the same data fails the same way |
    /// | `IoError` | no | the file system needs attention |
    /// | `ShutdownError` | no | the wrapper is closed |
    ///
    /// ```
    /// use arrow_zerobus_sdk_wrapper::ZerobusError;
    ///
    /// assert!(ZerobusError::connection("reset").is_retryable());
    /// assert!(!ZerobusError::configuration("table_name: empty").is_retryable());
    /// ```
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::ConnectionError { .. }
            | Self::TransmissionError { .. }
            | Self::TokenRefreshError { .. } => true,
            Self::ConfigurationError { .. }
            | Self::AuthenticationError { .. }
            | Self::ConversionError(_)
            | Self::RetryExhausted { .. }
            | Self::ArrowError { .. }
            | Self::IoError { .. }
            | Self::ShutdownError { .. } => false,
        }
    }

    /// Whether the error suggests an expired or rejected token.
    pub fn is_token_expired(&self) -> bool {
        matches!(self, Self::AuthenticationError { .. })
    }

    /// The variant name, e.g. `"ConversionError"`: the key used by
    /// [`TransmissionResult::group_errors_by_type`](crate::TransmissionResult::group_errors_by_type).
    pub fn error_type(&self) -> &'static str {
        match self {
            Self::ConfigurationError { .. } => "ConfigurationError",
            Self::AuthenticationError { .. } => "AuthenticationError",
            Self::ConnectionError { .. } => "ConnectionError",
            Self::ConversionError(_) => "ConversionError",
            Self::TransmissionError { .. } => "TransmissionError",
            Self::RetryExhausted { .. } => "RetryExhausted",
            Self::TokenRefreshError { .. } => "TokenRefreshError",
            Self::ArrowError { .. } => "ArrowError",
            Self::IoError { .. } => "IoError",
            Self::ShutdownError { .. } => "ShutdownError",
        }
    }

    /// The message without the variant's prefix (for a [`ZerobusError::IoError`], the
    /// path and the cause).
    pub fn message(&self) -> std::borrow::Cow<'_, str> {
        match self {
            Self::IoError { path, source } => format!("{}: {source}", path.display()).into(),
            other => other.text().map_or("", String::as_str).into(),
        }
    }

    /// The variant's own message text (`None` for an I/O error, whose message is its path
    /// and cause).
    fn text(&self) -> Option<&String> {
        match self {
            message_variants!(message) => Some(message),
            Self::ConversionError(failure) => Some(&failure.message),
            Self::IoError { .. } => None,
        }
    }

    /// The conversion details, if this is a [`ZerobusError::ConversionError`].
    pub fn conversion_failure(&self) -> Option<&ConversionFailure> {
        match self {
            Self::ConversionError(failure) => Some(failure),
            _ => None,
        }
    }

    /// A [`ZerobusError::ConfigurationError`].
    pub fn configuration(message: impl Into<String>) -> Self {
        Self::ConfigurationError {
            message: message.into(),
            source: None,
        }
    }

    /// A [`ZerobusError::AuthenticationError`].
    pub fn authentication(message: impl Into<String>) -> Self {
        Self::AuthenticationError {
            message: message.into(),
            source: None,
        }
    }

    /// A [`ZerobusError::ConnectionError`].
    pub fn connection(message: impl Into<String>) -> Self {
        Self::ConnectionError {
            message: message.into(),
            source: None,
        }
    }

    /// A [`ZerobusError::TransmissionError`].
    pub fn transmission(message: impl Into<String>) -> Self {
        Self::TransmissionError {
            message: message.into(),
            source: None,
        }
    }

    /// A [`ZerobusError::RetryExhausted`].
    pub fn retry_exhausted(message: impl Into<String>) -> Self {
        Self::RetryExhausted {
            message: message.into(),
            source: None,
        }
    }

    /// A [`ZerobusError::TokenRefreshError`].
    pub fn token_refresh(message: impl Into<String>) -> Self {
        Self::TokenRefreshError {
            message: message.into(),
            source: None,
        }
    }

    /// A [`ZerobusError::ShutdownError`].
    pub fn shutdown(message: impl Into<String>) -> Self {
        Self::ShutdownError {
            message: message.into(),
        }
    }

    /// A [`ZerobusError::ConversionError`] of `kind`.
    pub fn conversion(kind: ConversionErrorKind, message: impl Into<String>) -> Self {
        Self::ConversionError(ConversionFailure::new(kind, message))
    }

    /// An [`ZerobusError::ArrowError`]: `context` says what was being done.
    pub fn arrow(context: impl fmt::Display, source: arrow::error::ArrowError) -> Self {
        Self::ArrowError {
            message: format!("{context}: {source}"),
            source: Cause::new(source),
        }
    }

    /// An [`ZerobusError::IoError`] on `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::IoError {
            path: path.into(),
            source: Cause::new(source),
        }
    }

    /// This error with `source` as its cause (kept by the variants that have a `source`
    /// field and take an optional one; the others are returned unchanged).
    pub fn with_source(self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.with_cause(Cause::from(source))
    }

    /// [`with_source`](Self::with_source) with a shared cause.
    pub fn with_cause(mut self, cause: Cause) -> Self {
        match &mut self {
            Self::ConfigurationError { source, .. }
            | Self::AuthenticationError { source, .. }
            | Self::ConnectionError { source, .. }
            | Self::TransmissionError { source, .. }
            | Self::RetryExhausted { source, .. }
            | Self::TokenRefreshError { source, .. } => *source = Some(cause),
            Self::ConversionError(_)
            | Self::ArrowError { .. }
            | Self::IoError { .. }
            | Self::ShutdownError { .. } => {}
        }
        self
    }

    /// This error of a stream read `rows` rows into it: the message says so (the rows
    /// read before were sent).
    pub(crate) fn after_rows(self, rows: usize) -> Self {
        let mut error = self;
        let text = match &mut error {
            message_variants!(message) => Some(message),
            Self::ConversionError(failure) => Some(&mut failure.message),
            Self::IoError { .. } => None,
        };
        if let Some(message) = text {
            message.push_str(&format!(" (after {rows} rows of the stream)"));
        }
        error
    }

    /// This per-row error moved to row `row`: a conversion failure's `row` field changes
    /// (for rows numbered in a batch the caller never saw, such as the Unity Catalog
    /// check's filtered batch). Other errors carry no row.
    pub(crate) fn at_row(mut self, row: usize) -> Self {
        if let Self::ConversionError(failure) = &mut self {
            if failure.row.is_some() {
                failure.row = Some(row);
            }
        }
        self
    }
}

impl From<ConversionFailure> for ZerobusError {
    fn from(failure: ConversionFailure) -> Self {
        Self::ConversionError(failure)
    }
}

impl From<arrow::error::ArrowError> for ZerobusError {
    fn from(error: arrow::error::ArrowError) -> Self {
        Self::ArrowError {
            message: error.to_string(),
            source: Cause::new(error),
        }
    }
}

/// The error as DataFusion's [`External`](datafusion::error::DataFusionError::External),
/// so SQL users can downcast it back:
///
/// ```
/// use datafusion::error::DataFusionError;
/// use arrow_zerobus_sdk_wrapper::ZerobusError;
///
/// let error = DataFusionError::from(ZerobusError::connection("refused"));
/// let DataFusionError::External(inner) = &error else { unreachable!() };
/// assert!(inner.downcast_ref::<ZerobusError>().is_some_and(ZerobusError::is_retryable));
/// ```
#[cfg(feature = "datafusion")]
impl From<ZerobusError> for datafusion::error::DataFusionError {
    fn from(error: ZerobusError) -> Self {
        Self::External(Box::new(error))
    }
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use super::*;

    #[test]
    fn moving_a_failure_changes_its_row_field_only() {
        let failure = ConversionFailure::new(
            ConversionErrorKind::ValueOutOfRange,
            "column `n`: 300 does not fit TINYINT",
        )
        .with_column("n")
        .with_row(4);
        let moved = ZerobusError::ConversionError(failure).at_row(6);
        let failure = moved
            .conversion_failure()
            .expect("still a conversion error");
        assert_eq!(failure.row, Some(6));
        assert_eq!(failure.message, "column `n`: 300 does not fit TINYINT");
        // A failure of the whole batch has no row, and gets none.
        let whole = ZerobusError::conversion(ConversionErrorKind::TooManyColumns, "2001 columns");
        assert_eq!(whole.at_row(3).conversion_failure().unwrap().row, None);
        let rejected = ZerobusError::transmission("rejected by the server");
        assert_eq!(
            rejected.at_row(9).to_string(),
            "Transmission error: rejected by the server"
        );
    }

    #[test]
    fn conversion_failure_derefs_to_its_message() {
        let err = ZerobusError::conversion(
            ConversionErrorKind::RecordTooLarge,
            "record of 20 bytes exceeds Zerobus limit of 10 bytes",
        );
        let ZerobusError::ConversionError(msg) = &err else {
            panic!("expected a conversion error, got {err:?}")
        };
        assert!(msg.contains("exceeds Zerobus limit"));
        assert_eq!(msg.kind, ConversionErrorKind::RecordTooLarge);
        assert_eq!(
            err.to_string(),
            "Conversion error: record of 20 bytes exceeds Zerobus limit of 10 bytes"
        );
    }

    #[test]
    fn causes_are_kept_as_sources() {
        let status = tonic::Status::unavailable("server restarting");
        let error = ZerobusError::connection("stream: server restarting").with_source(status);
        let cause = error.source().expect("a source");
        assert_eq!(
            cause
                .downcast_ref::<tonic::Status>()
                .map(tonic::Status::code),
            Some(tonic::Code::Unavailable)
        );
        // A chain two deep: the exhausted retry keeps the last error, which keeps its own.
        let exhausted = ZerobusError::retry_exhausted(format!("3 attempts: {error}"))
            .with_source(error.clone());
        let last = exhausted.source().expect("the last error");
        assert!(last.downcast_ref::<ZerobusError>().is_some());
        assert!(last.source().expect("its cause").is::<tonic::Status>());

        let arrow: ZerobusError = arrow::error::ArrowError::CastError("Utf8 to Int8".into()).into();
        assert_eq!(arrow.error_type(), "ArrowError");
        assert!(arrow
            .source()
            .is_some_and(|c| c.is::<arrow::error::ArrowError>()));
        let io = ZerobusError::io("/tmp/x", std::io::Error::other("disk full"));
        assert!(io.source().is_some_and(|c| c.is::<std::io::Error>()));
        // Variants without a cause field stay as they are.
        assert!(ZerobusError::shutdown("send_batch")
            .with_source(std::io::Error::other("x"))
            .source()
            .is_none());
    }

    #[test]
    fn retryability_is_explicit() {
        let retryable = [
            ZerobusError::connection(""),
            ZerobusError::transmission(""),
            ZerobusError::token_refresh(""),
        ];
        let terminal = [
            ZerobusError::configuration(""),
            ZerobusError::authentication(""),
            ZerobusError::ConversionError("x".into()),
            ZerobusError::retry_exhausted(""),
            ZerobusError::arrow("cast", arrow::error::ArrowError::CastError("x".into())),
            ZerobusError::io("/tmp/x", std::io::Error::other("disk full")),
            ZerobusError::shutdown(""),
        ];
        assert!(retryable.iter().all(ZerobusError::is_retryable));
        assert!(!terminal.iter().any(ZerobusError::is_retryable));
        assert_eq!(terminal[2].error_type(), "ConversionError");
        assert_eq!(terminal[2].message(), "x");
    }
}
