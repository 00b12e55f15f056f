//! The official SDK's errors, in the wrapper's terms.

use databricks_zerobus_ingest_sdk::ZerobusError as SdkError;
use tonic::Code;

use crate::error::ZerobusError;

/// The wrapper error for an SDK error. SDK messages carry no secrets (tokens and client
/// secrets never appear in them), so they are kept as the detail.
pub(crate) fn from_sdk(error: &SdkError) -> ZerobusError {
    let text = error.to_string();
    match error {
        SdkError::InvalidUCTokenError(_) => ZerobusError::AuthenticationError(text),
        SdkError::TokenFetchError(_) => ZerobusError::TokenRefreshError(text),
        SdkError::CreateStreamError(status) | SdkError::StreamClosedError(status)
            if matches!(
                status.code(),
                Code::Unauthenticated | Code::PermissionDenied
            ) =>
        {
            ZerobusError::AuthenticationError(text)
        }
        SdkError::ChannelCreationError(_)
        | SdkError::FailedToEstablishTlsConnectionError
        | SdkError::ConnectionTimeout(_)
        | SdkError::CreateStreamError(_) => ZerobusError::ConnectionError(text),
        SdkError::InvalidZerobusEndpointError(_)
        | SdkError::InvalidTableName(_)
        | SdkError::InvalidUCEndpointError(_) => ZerobusError::ConfigurationError(text),
        _ => ZerobusError::TransmissionError(text),
    }
}

/// The error for an operation that still failed after `attempts` attempts. A retryable
/// cause becomes [`ZerobusError::RetryExhausted`]; a permanent one keeps its own kind.
pub(crate) fn exhausted(error: &SdkError, attempts: u32, what: &str) -> ZerobusError {
    if error.is_retryable() {
        ZerobusError::RetryExhausted(format!("{what} failed after {attempts} attempts: {error}"))
    } else {
        from_sdk(error)
    }
}

/// Whether the server refused the records themselves (`INVALID_ARGUMENT` on an open
/// stream, or a schema-validation error): sending them again cannot succeed, but other
/// records of the same request may be fine.
pub(crate) fn is_rejection(error: &SdkError) -> bool {
    match error {
        SdkError::StreamClosedError(status) => status.code() == Code::InvalidArgument,
        SdkError::InvalidSchema { .. } => true,
        _ => false,
    }
}

/// The per-row error of a record the server refused.
pub(crate) fn rejected(row: usize, error: &SdkError) -> ZerobusError {
    ZerobusError::TransmissionError(format!("row {row}: rejected by the server: {error}"))
}

#[cfg(test)]
mod tests {
    use tonic::Status;

    use super::*;

    #[test]
    fn kinds_follow_the_cause() {
        let auth = SdkError::CreateStreamError(Status::unauthenticated("bad token"));
        assert!(matches!(
            from_sdk(&auth),
            ZerobusError::AuthenticationError(_)
        ));
        let down = SdkError::CreateStreamError(Status::unavailable("down"));
        assert!(matches!(from_sdk(&down), ZerobusError::ConnectionError(_)));
        assert!(matches!(
            exhausted(&down, 3, "opening a stream"),
            ZerobusError::RetryExhausted(m) if m.contains("after 3 attempts")
        ));
        let table = SdkError::InvalidTableName("x".into());
        assert!(matches!(
            exhausted(&table, 1, "opening a stream"),
            ZerobusError::ConfigurationError(_)
        ));
    }

    #[test]
    fn only_invalid_argument_on_a_stream_is_a_rejection() {
        assert!(is_rejection(&SdkError::StreamClosedError(
            Status::invalid_argument("bad record")
        )));
        assert!(!is_rejection(&SdkError::StreamClosedError(
            Status::unavailable("x")
        )));
        assert!(!is_rejection(&SdkError::InvalidArgument(
            "payload too large".into()
        )));
        let row = rejected(
            4,
            &SdkError::StreamClosedError(Status::invalid_argument("bad")),
        );
        assert!(
            row.to_string().contains("row 4: rejected by the server"),
            "{row}"
        );
    }
}
