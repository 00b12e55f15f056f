//! The official SDK's errors, in the wrapper's terms.

use databricks_zerobus_ingest_sdk::ZerobusError as SdkError;
use tonic::Code;

use crate::error::ZerobusError;

/// The wrapper error for an SDK error. SDK messages carry no secrets (tokens and client
/// secrets never appear in them), so they are kept as the detail.
/// The SDK's error is kept as the source.
pub(crate) fn from_sdk(error: &SdkError) -> ZerobusError {
    let text = error.to_string();
    let wrapped = match error {
        SdkError::InvalidUCTokenError(_) => ZerobusError::authentication(text),
        SdkError::TokenFetchError(_) => ZerobusError::token_refresh(text),
        SdkError::CreateStreamError(status) | SdkError::StreamClosedError(status)
            if matches!(
                status.code(),
                Code::Unauthenticated | Code::PermissionDenied
            ) =>
        {
            ZerobusError::authentication(text)
        }
        SdkError::ChannelCreationError(_)
        | SdkError::FailedToEstablishTlsConnectionError
        | SdkError::ConnectionTimeout(_)
        | SdkError::CreateStreamError(_) => ZerobusError::connection(text),
        SdkError::InvalidZerobusEndpointError(_)
        | SdkError::InvalidTableName(_)
        | SdkError::InvalidUCEndpointError(_) => ZerobusError::configuration(text),
        _ => ZerobusError::transmission(text),
    };
    wrapped.with_source(error.clone())
}

/// The error for an operation that still failed after `attempts` attempts. A retryable
/// cause becomes [`ZerobusError::RetryExhausted`]; a permanent one keeps its own kind.
pub(crate) fn exhausted(error: &SdkError, attempts: u32, what: &str) -> ZerobusError {
    if error.is_retryable() {
        ZerobusError::retry_exhausted(format!("{what} failed after {attempts} attempts: {error}"))
            .with_source(error.clone())
    } else {
        from_sdk(error)
    }
}

/// Whether the server refused the records themselves (`INVALID_ARGUMENT` on an open
/// stream, or a schema-validation error): sending them again cannot succeed, but other
/// records of the same request may be fine.
///
/// Only meaningful for the error of a stream that failed (a wait or flush on a closed
/// stream): the SDK reports a stream ended with `INVALID_ARGUMENT` as
/// [`SdkError::InvalidArgument`] carrying the server's message (its supervisor maps it),
/// the same variant it uses for arguments it refuses itself before sending.
pub(crate) fn is_rejection(error: &SdkError) -> bool {
    match error {
        SdkError::StreamClosedError(status) => status.code() == Code::InvalidArgument,
        SdkError::InvalidArgument(_) | SdkError::InvalidSchema { .. } => true,
        _ => false,
    }
}

/// The per-row error of a record the server refused.
pub(crate) fn rejected(error: &SdkError) -> ZerobusError {
    ZerobusError::transmission(format!("rejected by the server: {error}"))
        .with_source(error.clone())
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
            ZerobusError::AuthenticationError { .. }
        ));
        let down = SdkError::CreateStreamError(Status::unavailable("down"));
        assert!(matches!(
            from_sdk(&down),
            ZerobusError::ConnectionError { .. }
        ));
        assert!(matches!(
            exhausted(&down, 3, "opening a stream"),
            ZerobusError::RetryExhausted { message, .. } if message.contains("after 3 attempts")
        ));
        let table = SdkError::InvalidTableName("x".into());
        assert!(matches!(
            exhausted(&table, 1, "opening a stream"),
            ZerobusError::ConfigurationError { .. }
        ));
    }

    #[test]
    fn only_invalid_argument_on_a_stream_is_a_rejection() {
        assert!(is_rejection(&SdkError::StreamClosedError(
            Status::invalid_argument("bad record")
        )));
        // What the SDK's supervisor makes of that status before reporting it.
        assert!(is_rejection(&SdkError::InvalidArgument(
            "bad record".into()
        )));
        assert!(!is_rejection(&SdkError::StreamClosedError(
            Status::unavailable("x")
        )));
        assert!(!is_rejection(&SdkError::StreamClosedError(
            Status::deadline_exceeded("Server ack timeout")
        )));
        let row = rejected(&SdkError::StreamClosedError(Status::invalid_argument(
            "bad",
        )));
        assert!(
            row.to_string()
                .starts_with("Transmission error: rejected by the server"),
            "{row}"
        );
        let status = std::error::Error::source(&row)
            .and_then(|cause| cause.downcast_ref::<SdkError>())
            .map(|sdk| matches!(sdk, SdkError::StreamClosedError(s) if s.message() == "bad"));
        assert_eq!(status, Some(true), "the SDK's error is the source");
    }
}
