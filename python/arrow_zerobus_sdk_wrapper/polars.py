"""Polars to Zerobus: ``LazyFrame.sink_zerobus`` (streaming, bounded memory) and
``DataFrame.write_zerobus``.

Importing :mod:`arrow_zerobus_sdk_wrapper` adds both methods to Polars when Polars is
installed, and a ``zerobus`` namespace for those who prefer no new methods on Polars'
classes: ``lf.zerobus.sink(...)``, ``df.zerobus.write(...)``.

The bridge is the Arrow PyCapsule stream interface: ``LazyFrame.collect_batches`` runs
Polars' streaming engine and its result implements ``__arrow_c_stream__``, which the Rust
core reads batch by batch, zero-copy. (pyo3-polars is not used: its ``PyLazyFrame`` cannot
read plans serialized by released Python Polars, and it would compile the whole Polars
crate family into the extension.)

Polars' types arrive as Arrow types the encoder takes: ``String``/``Binary`` as
Utf8View/BinaryView, ``Categorical``/``Enum`` as dictionaries, ``Decimal``, ``Datetime``
with or without a time zone, ``Date``, ``List``, ``Array``, ``Struct``. ``Time``,
``Duration`` and ``Null`` columns have no Delta type and fail up front with
:class:`~arrow_zerobus_sdk_wrapper.ConversionError` naming the column and the cast to use.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeAlias

import polars as pl

from . import DEFAULT_MAX_INFLIGHT_BATCHES, TransmissionResult, WrapperConfiguration, ZerobusWrapper
from .exceptions import ConversionError, ZerobusError

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = ["RowsFailedError", "sink_zerobus", "write_zerobus", "register"]

OnError: TypeAlias = Literal["raise", "return", "quarantine"]


class RowsFailedError(ZerobusError):
    """Some rows did not land (every good row did, and is durable). ``result`` is the
    :class:`~arrow_zerobus_sdk_wrapper.TransmissionResult`; the message counts the rows
    and groups the reasons."""

    error_type = "RowsFailedError"

    def __init__(self, message: str, result: TransmissionResult | None = None) -> None:
        super().__init__(message)
        self.result = result


def sink_zerobus(
    lf: pl.LazyFrame,
    table_name: str,
    *,
    endpoint: str | None = None,
    config: WrapperConfiguration | None = None,
    chunk_size: int | None = None,
    max_inflight_batches: int = DEFAULT_MAX_INFLIGHT_BATCHES,
    on_error: OnError = "raise",
    quarantine_path: str | Path | None = None,
    **options: Any,
) -> pl.DataFrame | TransmissionResult:
    """Streams ``lf`` into the Zerobus table ``table_name``, in bounded memory.

    The query runs on Polars' streaming engine (``collect_batches(chunk_size=...)``); at
    most ``max_inflight_batches`` batches are in flight at once. Connection options are
    those of :class:`~arrow_zerobus_sdk_wrapper.WrapperConfiguration` (``client_id``,
    ``client_secret``, ``unity_catalog_url``, ``transport``, ...) or a ready ``config``.

    Failed rows (``on_error``):

    - ``"raise"`` (default): once every good row is durable, raise
      :class:`RowsFailedError` with the counts and grouped reasons;
    - ``"return"``: return the failed rows as a ``DataFrame`` with their error in the
      column ``_zerobus_error`` (empty when every row landed);
    - ``"quarantine"``: write them to ``quarantine_path`` (an Arrow IPC file, with
      ``_zerobus_error``) and return the :class:`TransmissionResult`.

    Otherwise returns the :class:`TransmissionResult` of the whole frame.
    """
    if not isinstance(lf, pl.LazyFrame):
        raise TypeError(f"lf: expected a polars.LazyFrame, got {type(lf).__name__}")
    if on_error not in ("raise", "return", "quarantine"):
        raise ValueError(
            f"on_error: expected 'raise', 'return' or 'quarantine', got {on_error!r}"
        )
    if on_error == "quarantine" and quarantine_path is None:
        raise ValueError("quarantine_path: required with on_error='quarantine'")
    _check_schema(lf.collect_schema())
    wrapper = _wrapper(table_name, endpoint, config, options)
    batches = lf.collect_batches(chunk_size=chunk_size)
    keep = on_error != "raise"
    try:
        result = wrapper.send_sync(
            batches, max_inflight_batches=max_inflight_batches, keep_failed_rows=keep
        )
    finally:
        wrapper.shutdown_sync()
    return _outcome(result, on_error, quarantine_path)


def write_zerobus(
    df: pl.DataFrame,
    table_name: str,
    **kwargs: Any,
) -> pl.DataFrame | TransmissionResult:
    """Writes ``df`` to the Zerobus table ``table_name``; the keywords of
    :func:`sink_zerobus`."""
    if not isinstance(df, pl.DataFrame):
        raise TypeError(f"df: expected a polars.DataFrame, got {type(df).__name__}")
    return sink_zerobus(df.lazy(), table_name, **kwargs)


def _check_schema(schema: pl.Schema) -> None:
    """Refuses, before running the query, what cannot reach Zerobus through Arrow's C
    interface: ``Null`` columns (Polars exports them with a buffer Arrow's C interface
    does not allow, and Delta has no NULL type)."""
    for name, dtype in schema.items():
        if dtype == pl.Null:
            error = ConversionError(
                f"Conversion error: column `{name}`: Polars type Null has no Delta type; "
                f"cast it to the table's type, e.g. pl.col({name!r}).cast(pl.String)"
            )
            error.kind, error.column = "UnsupportedType", name
            raise error


def _wrapper(
    table_name: str,
    endpoint: str | None,
    config: WrapperConfiguration | None,
    options: dict[str, Any],
) -> ZerobusWrapper:
    if config is not None:
        if endpoint is not None or options:
            raise TypeError("config: give either config or endpoint and options, not both")
        if config.table_name != table_name:
            raise ValueError(
                f"table_name: {table_name!r} differs from config.table_name "
                f"{config.table_name!r}"
            )
        return ZerobusWrapper(config)
    if endpoint is None:
        raise TypeError("endpoint: required (or pass config=WrapperConfiguration(...))")
    return ZerobusWrapper(endpoint, table_name, **options)


def _outcome(
    result: TransmissionResult, on_error: OnError, quarantine_path: str | Path | None
) -> pl.DataFrame | TransmissionResult:
    if on_error == "raise":
        if result.has_failed_rows():
            raise RowsFailedError(_summary(result), result)
        return result
    failed = _failed_frame(result)
    if on_error == "return":
        return failed
    assert quarantine_path is not None
    failed.write_ipc(Path(quarantine_path))
    return result


def _failed_frame(result: TransmissionResult) -> pl.DataFrame:
    """The failed rows with their error text, in row order."""
    frames: Iterable[pl.DataFrame] = [
        pl.DataFrame(pl.from_arrow(batch)) for batch in result.failed_batches or []
    ]
    failed = pl.concat(list(frames)) if result.failed_batches else pl.DataFrame()
    errors = [str(error) for _, error in result.failed_rows]
    return failed.with_columns(pl.Series("_zerobus_error", errors, dtype=pl.String))


def _summary(result: TransmissionResult) -> str:
    groups = ", ".join(
        f"{len(rows)} × {error_type}"
        for error_type, rows in sorted(result.group_errors_by_type().items())
    )
    first_row, first_error = result.failed_rows[0]
    return (
        f"{result.failed_count} of {result.total_rows} rows failed ({groups}); "
        f"{result.successful_count} landed. First: row {first_row}: {first_error}"
    )


class _LazyNamespace:
    """``lf.zerobus``: the sink as a namespace."""

    def __init__(self, lf: pl.LazyFrame) -> None:
        self._lf = lf

    def sink(self, table_name: str, **kwargs: Any) -> pl.DataFrame | TransmissionResult:
        """:func:`sink_zerobus` of this LazyFrame."""
        return sink_zerobus(self._lf, table_name, **kwargs)


class _FrameNamespace:
    """``df.zerobus``: the writer as a namespace."""

    def __init__(self, df: pl.DataFrame) -> None:
        self._df = df

    def write(self, table_name: str, **kwargs: Any) -> pl.DataFrame | TransmissionResult:
        """:func:`write_zerobus` of this DataFrame."""
        return write_zerobus(self._df, table_name, **kwargs)


_registered = False


def register() -> None:
    """Adds ``LazyFrame.sink_zerobus``, ``DataFrame.write_zerobus`` and the ``zerobus``
    namespaces to Polars (done on import; idempotent)."""
    global _registered
    if _registered:
        return
    pl.LazyFrame.sink_zerobus = sink_zerobus  # type: ignore[attr-defined]
    pl.DataFrame.write_zerobus = write_zerobus  # type: ignore[attr-defined]
    pl.api.register_lazyframe_namespace("zerobus")(_LazyNamespace)
    pl.api.register_dataframe_namespace("zerobus")(_FrameNamespace)
    _registered = True


register()
