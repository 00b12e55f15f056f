"""The exceptions of the wrapper: one class per kind of the Rust `ZerobusError`.

Every error the wrapper raises is a :class:`ZerobusError`; the per-row errors in
``TransmissionResult.failed_rows`` are instances of the same classes. The class is chosen by
the error's kind, never by parsing its message. ``is_retryable`` says whether the same
operation may succeed if tried again.

Arguments of the wrong type or value raise Python's own ``TypeError`` / ``ValueError``,
naming the argument.
"""

from __future__ import annotations

__all__ = [
    "ZerobusError",
    "ConfigurationError",
    "AuthenticationError",
    "ConnectionError",
    "ConversionError",
    "TransmissionError",
    "RetryExhausted",
    "TokenRefreshError",
    "ArrowError",
    "IoError",
    "ShutdownError",
]


class ZerobusError(Exception):
    """Base class of every error of the wrapper."""

    #: Whether the same operation may succeed if tried again.
    is_retryable: bool = False
    #: The kind, e.g. ``"ConversionError"`` (the key of ``group_errors_by_type``).
    error_type: str = "ZerobusError"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ConfigurationError(ZerobusError):
    """An option is missing or invalid; the message names the option and the rule."""

    error_type = "ConfigurationError"


class AuthenticationError(ZerobusError):
    """Credentials were rejected (wrong client id or secret, expired or unknown token)."""

    error_type = "AuthenticationError"


class ConnectionError(ZerobusError):  # noqa: A001 - the original wrapper's name
    """The Zerobus endpoint could not be reached, or the connection broke."""

    is_retryable = True
    error_type = "ConnectionError"


class ConversionError(ZerobusError):
    """Arrow data could not be turned into Zerobus records: an unsupported type, a bad
    column name, a value out of range, a record over the size limit, ...

    ``kind`` names the problem (``"ValueOutOfRange"``, ``"RecordTooLarge"``, ...),
    ``column`` the column at fault (``a.b`` for nested fields) and ``row`` the row, when
    they apply.
    """

    error_type = "ConversionError"
    kind: str | None = None
    column: str | None = None
    row: int | None = None


class TransmissionError(ZerobusError):
    """Records were sent but not acknowledged, or the server refused them."""

    is_retryable = True
    error_type = "TransmissionError"


class RetryExhausted(ZerobusError):
    """Every retry attempt was used; the message carries the last error."""

    error_type = "RetryExhausted"


class TokenRefreshError(ZerobusError):
    """A new OAuth token could not be obtained."""

    is_retryable = True
    error_type = "TokenRefreshError"


class ArrowError(ZerobusError):
    """An Arrow operation on the data failed (reading the input stream, a cast, writing
    a debug file)."""

    error_type = "ArrowError"


class IoError(ZerobusError):
    """Reading or writing a local file (debug output, configuration) failed; ``path``
    names it."""

    error_type = "IoError"
    path: str | None = None


class ShutdownError(ZerobusError):
    """The wrapper was used after ``shutdown()``."""

    error_type = "ShutdownError"
