"""Send Apache Arrow data to Databricks Zerobus.

Hand :class:`ZerobusWrapper` a pyarrow ``RecordBatch`` (``send_batch``) or anything with
the Arrow PyCapsule interface (``send``: a pyarrow Table or RecordBatchReader, a Polars
DataFrame, a DuckDB relation, ...). The data is read zero-copy, encoded and sent by the
Rust core with the GIL released, and the :class:`TransmissionResult` says what became of
every row.

Every operation comes in two forms: ``await wrapper.send_batch(batch)`` (asyncio: the
event loop is never blocked) and ``wrapper.send_batch_sync(batch)`` (scripts, notebooks
with a running loop, threads; Ctrl-C interrupts it).

Importing the package also adds ``LazyFrame.sink_zerobus`` and ``DataFrame.write_zerobus``
to Polars when Polars is installed (see :mod:`arrow_zerobus_sdk_wrapper.polars`).
"""

from __future__ import annotations

from types import TracebackType
from typing import Any

from ._internal import RawWrapper, TransmissionResult, WrapperConfiguration, __version__
from .exceptions import (
    ArrowError,
    AuthenticationError,
    ConfigurationError,
    ConnectionError,
    ConversionError,
    IoError,
    RetryExhausted,
    ShutdownError,
    TokenRefreshError,
    TransmissionError,
    ZerobusError,
)

#: The original wrapper's name for :class:`WrapperConfiguration`.
PyWrapperConfiguration = WrapperConfiguration

__all__ = [
    "ZerobusWrapper",
    "WrapperConfiguration",
    "PyWrapperConfiguration",
    "TransmissionResult",
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
    "__version__",
]

#: Batches ``send`` keeps in flight by default.
DEFAULT_MAX_INFLIGHT_BATCHES = 4


class ZerobusWrapper:
    """Sends Arrow data to one Zerobus table.

    ``ZerobusWrapper(endpoint, table_name, **options)`` takes every option of
    :class:`WrapperConfiguration` as a keyword (``client_id``, ``client_secret``,
    ``unity_catalog_url``, ``transport``, ``debug_output_dir``, ...);
    ``ZerobusWrapper(config)`` takes a ready configuration. A plain-http loopback endpoint
    (such as ``testing.LocalZerobus``) needs no credentials.

    Safe to use from many asyncio tasks and threads at once: concurrent sends share one
    stream and pipeline. Use it as ``async with`` / ``with`` to shut it down at the end.
    """

    def __init__(
        self,
        endpoint: str | WrapperConfiguration,
        table_name: str | None = None,
        **options: Any,
    ) -> None:
        if isinstance(endpoint, WrapperConfiguration):
            if table_name is not None or options:
                raise TypeError(
                    "ZerobusWrapper(config): give either a WrapperConfiguration or "
                    "endpoint, table_name and options, not both"
                )
            config = endpoint
        elif isinstance(endpoint, str):
            if not isinstance(table_name, str):
                raise TypeError(
                    "table_name: expected a str (catalog.schema.table), got "
                    f"{type(table_name).__name__}"
                )
            config = WrapperConfiguration(endpoint, table_name, **options)
        else:
            raise TypeError(
                "endpoint: expected a str or a WrapperConfiguration, got "
                f"{type(endpoint).__name__}"
            )
        self._raw = RawWrapper(config)

    @property
    def config(self) -> WrapperConfiguration:
        """The configuration this wrapper runs with."""
        return self._raw.config

    # asyncio

    async def send_batch(self, batch: Any) -> TransmissionResult:
        """Sends one batch (a ``pyarrow.RecordBatch`` or an object with
        ``__arrow_c_array__``) and returns, once every row is durable or failed, what
        became of each row. Raises a :class:`ZerobusError` for problems of the whole batch
        (a schema Zerobus cannot take, a closed wrapper)."""
        result: TransmissionResult = await self._raw.send_batch_async(batch)
        return result

    async def send(
        self,
        data: Any,
        *,
        max_inflight_batches: int = DEFAULT_MAX_INFLIGHT_BATCHES,
        keep_failed_rows: bool = False,
    ) -> TransmissionResult:
        """Sends every batch of ``data`` (anything with ``__arrow_c_stream__``: a pyarrow
        Table or RecordBatchReader, a Polars DataFrame, a DuckDB relation, ... or one batch
        with ``__arrow_c_array__``), read batch by batch with at most
        ``max_inflight_batches`` unacknowledged, so memory stays bounded. The one result
        numbers rows across the whole input; with ``keep_failed_rows`` its
        ``failed_batches`` hold the failed rows' data."""
        result: TransmissionResult = await self._raw.send_async(
            data, max_inflight_batches, keep_failed_rows
        )
        return result

    async def flush(self) -> None:
        """Waits until every batch sent so far is durable or failed."""
        await self._raw.flush_async()

    async def shutdown(self) -> None:
        """Flushes and closes; later sends raise :class:`ShutdownError`. Idempotent."""
        await self._raw.shutdown_async()

    async def __aenter__(self) -> ZerobusWrapper:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.shutdown()

    # blocking

    def send_batch_sync(self, batch: Any) -> TransmissionResult:
        """:meth:`send_batch`, blocking (the GIL is released while it runs)."""
        return self._raw.send_batch_sync(batch)

    def send_sync(
        self,
        data: Any,
        *,
        max_inflight_batches: int = DEFAULT_MAX_INFLIGHT_BATCHES,
        keep_failed_rows: bool = False,
    ) -> TransmissionResult:
        """:meth:`send`, blocking (the GIL is released while it runs)."""
        return self._raw.send_sync(data, max_inflight_batches, keep_failed_rows)

    def flush_sync(self) -> None:
        """:meth:`flush`, blocking."""
        self._raw.flush_sync()

    def shutdown_sync(self) -> None:
        """:meth:`shutdown`, blocking."""
        self._raw.shutdown_sync()

    def __enter__(self) -> ZerobusWrapper:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.shutdown_sync()

    def __repr__(self) -> str:
        return f"ZerobusWrapper({self.config!r})"


def _register_polars() -> None:
    """Adds the Polars entry points when Polars is installed."""
    try:
        import polars  # noqa: F401
    except ImportError:
        return
    from . import polars as _polars

    _polars.register()


_register_polars()
