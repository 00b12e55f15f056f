"""DataFusion SQL to Zerobus: the Zerobus table in a datafusion-python ``SessionContext``.

.. code-block:: python

    from datafusion import SessionContext
    from arrow_zerobus_sdk_wrapper.datafusion import ZerobusTable

    ctx = SessionContext()
    ctx.register_table("events", ZerobusTable("main.demo.events", schema, endpoint=...))
    ctx.sql("INSERT INTO events SELECT * FROM read_parquet('data/*.parquet')").collect()

:class:`ZerobusTable` is the Rust ``ZerobusTableProvider`` (write-only: ``INSERT INTO``
appends, ``SELECT`` is an error) handed to DataFusion through its FFI
(``__datafusion_table_provider__``); :class:`ZerobusTableFactory` is the ``STORED AS
ZEROBUS`` factory (``CREATE EXTERNAL TABLE``), registered with :func:`register`. Both
run their work on the package's own Tokio runtime.

DataFusion's FFI is tied to a major version: the capsules are those of DataFusion
:data:`DATAFUSION_MAJOR_VERSION`, so the ``datafusion`` Python package must be of that
major version (checked when DataFusion asks for the capsule; another version raises
:class:`ImportError` instead of crashing the process).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, TypeAlias

import pyarrow as pa

from ._internal import DATAFUSION_FFI_MAJOR, RawZerobusTable, RawZerobusTableFactory

__all__ = [
    "DATAFUSION_MAJOR_VERSION",
    "FACTORY_KEY",
    "ZerobusTable",
    "ZerobusTableFactory",
    "register",
]

#: The major version of the ``datafusion`` Python package the capsules are made for.
DATAFUSION_MAJOR_VERSION: int = DATAFUSION_FFI_MAJOR

#: The ``STORED AS`` name of the factory (DataFusion upper-cases it before the look-up).
FACTORY_KEY = "ZEROBUS"

OnError: TypeAlias = Literal["fail", "quarantine"]


def check_datafusion_version() -> None:
    """Raises :class:`ImportError` unless the installed ``datafusion`` package has the
    major version of the FFI the capsules are built for."""
    try:
        import datafusion
    except ImportError as missing:
        raise ImportError(
            "arrow_zerobus_sdk_wrapper.datafusion: the `datafusion` package is not "
            f"installed; install datafusion=={DATAFUSION_MAJOR_VERSION}.*"
        ) from missing
    version = str(getattr(datafusion, "__version__", "unknown"))
    major = version.split(".", 1)[0]
    if major != str(DATAFUSION_MAJOR_VERSION):
        raise ImportError(
            f"arrow_zerobus_sdk_wrapper.datafusion: the installed `datafusion` package is "
            f"{version}, but the Zerobus table speaks the FFI of DataFusion "
            f"{DATAFUSION_MAJOR_VERSION} (DataFusion's FFI changes with each major "
            f"version); install datafusion=={DATAFUSION_MAJOR_VERSION}.*"
        )


class ZerobusTable:
    """A write-only Zerobus table for DataFusion SQL: ``ctx.register_table(name, table)``,
    then ``INSERT INTO name ...`` lands the rows and returns their count.

    ``schema`` is the table's Arrow schema (a ``pyarrow.Schema`` or any object with
    ``__arrow_c_schema__``; NOT NULL columns are enforced row by row); without it the schema
    is read from Unity Catalog (``unity_catalog_url`` is then needed).

    The options are those of ``CREATE EXTERNAL TABLE ... STORED AS ZEROBUS``
    (``docs/datafusion.md``): connection (``endpoint``, ``unity_catalog_url``,
    ``client_id``, ``client_secret``, ``transport``, ``flight_ipc_compression``,
    ``multiplexed_streams``, ``max_record_size_bytes``, ``max_request_bytes``,
    ``retry_*``), sink (``workers``, ``max_inflight_batches``) and failed rows
    (``on_error``: ``"fail"``, the INSERT raises once the good rows are durable, naming
    the failed rows' reasons; ``"quarantine"``, they are written to Arrow IPC files in
    ``quarantine_dir`` and the INSERT returns the count of rows that landed). As for the SQL
    factory, the ``ZEROBUS_*`` environment variables stand in for options not given.

    The client secret is never readable back and never appears in ``repr()`` or errors.
    """

    def __init__(
        self,
        table_name: str,
        schema: Any = None,
        *,
        endpoint: str,
        unity_catalog_url: str | None = None,
        client_id: str | None = None,
        client_secret: str | None = None,
        transport: str | None = None,
        flight_ipc_compression: str | None = None,
        multiplexed_streams: int | None = None,
        max_record_size_bytes: int | None = None,
        max_request_bytes: int | None = None,
        retry_max_attempts: int | None = None,
        retry_base_delay_ms: int | None = None,
        retry_max_delay_ms: int | None = None,
        workers: int | None = None,
        max_inflight_batches: int | None = None,
        on_error: OnError = "fail",
        quarantine_dir: str | Path | None = None,
    ) -> None:
        if not isinstance(table_name, str):
            raise TypeError(
                f"table_name: expected a str (catalog.schema.table), got "
                f"{type(table_name).__name__}"
            )
        given: dict[str, object] = {
            "endpoint": endpoint,
            "unity_catalog_url": unity_catalog_url,
            "client_id": client_id,
            "client_secret": client_secret,
            "transport": transport,
            "flight_ipc_compression": flight_ipc_compression,
            "multiplexed_streams": multiplexed_streams,
            "max_record_size_bytes": max_record_size_bytes,
            "max_request_bytes": max_request_bytes,
            "retry_max_attempts": retry_max_attempts,
            "retry_base_delay_ms": retry_base_delay_ms,
            "retry_max_delay_ms": retry_max_delay_ms,
            "workers": workers,
            "max_inflight_batches": max_inflight_batches,
            "on_error": on_error,
            "quarantine_dir": quarantine_dir,
        }
        options = {key: _option(key, value) for key, value in given.items() if value is not None}
        self._raw = RawZerobusTable(table_name, schema, options)

    def __datafusion_table_provider__(self, session: Any = None) -> object:
        """The table as an ``FFI_TableProvider`` PyCapsule (what ``register_table`` asks
        for). Raises :class:`ImportError` if the ``datafusion`` package is not of major
        version :data:`DATAFUSION_MAJOR_VERSION`."""
        check_datafusion_version()
        return self._raw.__datafusion_table_provider__(session)

    @property
    def table_name(self) -> str:
        """The Zerobus table (``catalog.schema.table``)."""
        return self._raw.table_name

    @property
    def schema(self) -> pa.Schema:
        """The table's schema as declared (NOT NULL columns included)."""
        return self._raw.schema

    @property
    def endpoint(self) -> str:
        """The Zerobus endpoint."""
        return self._raw.endpoint

    @property
    def transport(self) -> str:
        """``"protobuf"`` or ``"arrow_flight"``."""
        return self._raw.transport

    @property
    def workers(self) -> int:
        """Parallel Zerobus streams an INSERT writes through."""
        return self._raw.workers

    @property
    def on_error(self) -> str:
        """``"fail"`` or ``"quarantine"``."""
        return self._raw.on_error

    def __repr__(self) -> str:
        raw = self._raw
        secret = "'<redacted>'" if raw.has_client_secret else "None"
        return (
            f"ZerobusTable(table_name={raw.table_name!r}, endpoint={raw.endpoint!r}, "
            f"transport={raw.transport!r}, client_id={raw.client_id!r}, "
            f"client_secret={secret}, workers={raw.workers}, "
            f"max_inflight_batches={raw.max_inflight_batches}, on_error={raw.on_error!r})"
        )


class ZerobusTableFactory:
    """The ``STORED AS ZEROBUS`` table factory for ``CREATE EXTERNAL TABLE``; register it
    with :func:`register` (or ``ctx.register_table_factory("ZEROBUS", factory)``).

    The tables take the options of ``docs/datafusion.md`` in ``OPTIONS (...)``;
    ``env`` replaces the process environment as the source of the ``ZEROBUS_*`` fallbacks
    (one set of credentials per context).
    """

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        self._raw = RawZerobusTableFactory(None if env is None else dict(env))

    def __datafusion_table_provider_factory__(self, codec: Any = None) -> object:
        """The factory as an ``FFI_TableProviderFactory`` PyCapsule. Raises
        :class:`ImportError` if the ``datafusion`` package is not of major version
        :data:`DATAFUSION_MAJOR_VERSION`."""
        check_datafusion_version()
        return self._raw.__datafusion_table_provider_factory__(codec)

    def __repr__(self) -> str:
        return "ZerobusTableFactory()"


def register(ctx: Any, env: Mapping[str, str] | None = None) -> None:
    """Registers the ``STORED AS ZEROBUS`` factory on the ``datafusion.SessionContext``
    ``ctx`` (``env``: see :class:`ZerobusTableFactory`)."""
    ctx.register_table_factory(FACTORY_KEY, ZerobusTableFactory(env))


def _option(key: str, value: object) -> str:
    """An option's value as the SQL factory takes it (a string)."""
    if isinstance(value, bool) or not isinstance(value, (str, int, Path)):
        raise TypeError(f"{key}: expected a str or an int, got {type(value).__name__}")
    return str(value)
