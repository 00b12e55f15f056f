"""A local Zerobus server in your Python process, for tests: no workspace, no credentials.

:class:`LocalZerobus` runs the same server the project's own tests use (the Rust crate
``zerobus-local``, bundled in the wheel): the Zerobus gRPC service and Arrow Flight on one
loopback port, the OAuth token and Unity Catalog endpoints on another. Rows land in memory
(default), in real Delta tables (``landing="delta"``), or nowhere (``landing="none"``, for
benchmarks). The pytest plugin of the package gives a ``zerobus_local`` fixture.

>>> import pyarrow as pa
>>> from arrow_zerobus_sdk_wrapper import ZerobusWrapper
>>> with LocalZerobus() as server:
...     with ZerobusWrapper(server.endpoint, "main.demo.events") as wrapper:
...         _ = wrapper.send_sync(pa.table({"id": [1, 2, 3]}))
...     server.read_table("main.demo.events").num_rows
3
"""

from __future__ import annotations

from pathlib import Path
from types import TracebackType
from typing import Any, Literal, TypeAlias

import pyarrow as pa

from ._internal import RawLocalZerobus

__all__ = ["LocalZerobus"]

Landing: TypeAlias = Literal["memory", "delta", "none"]


class LocalZerobus:
    """A local Zerobus-compatible server.

    Declare tables up front with ``tables={"c.s.t": schema}`` or :meth:`table` (before the
    server starts): streams whose schema does not fit are then rejected as the service
    rejects them. Otherwise a table is created from the first stream that names it
    (unless ``strict``). ``auth=True`` requires OAuth tokens issued to
    :attr:`client_id` / :attr:`client_secret`.

    Start it with :meth:`start`, ``with`` or ``async with``; stop it with :meth:`shutdown`.
    """

    def __init__(
        self,
        tables: dict[str, pa.Schema] | None = None,
        *,
        landing: Landing = "memory",
        auth: bool = False,
        data_dir: str | Path | None = None,
        strict: bool = False,
        stream_lifetime_secs: float | None = None,
        token_ttl_secs: float | None = None,
        commit_interval_ms: int | None = None,
        client_id: str | None = None,
        client_secret: str | None = None,
    ) -> None:
        self._tables: list[tuple[str, pa.Schema]] = list((tables or {}).items())
        self._options: dict[str, Any] = {
            "landing": landing,
            "auth": auth,
            "data_dir": None if data_dir is None else str(data_dir),
            "strict": strict,
            "stream_lifetime_secs": stream_lifetime_secs,
            "token_ttl_secs": token_ttl_secs,
            "commit_interval_ms": commit_interval_ms,
            "client_id": client_id,
            "client_secret": client_secret,
        }
        self._raw: RawLocalZerobus | None = None

    def table(self, name: str, schema: pa.Schema) -> LocalZerobus:
        """Declares table ``name`` (``catalog.schema.table``) with ``schema``; before start."""
        if self._raw is not None:
            raise RuntimeError("table(): declare tables before the server starts")
        self._tables.append((name, schema))
        return self

    def start(self) -> LocalZerobus:
        """Binds free loopback ports and starts serving (idempotent)."""
        if self._raw is None:
            self._raw = RawLocalZerobus(self._tables, **self._options)
        return self

    @property
    def raw(self) -> RawLocalZerobus:
        """The running server (raises if it is not running)."""
        if self._raw is None:
            raise RuntimeError("the local Zerobus server is not running: call start()")
        return self._raw

    @property
    def endpoint(self) -> str:
        """The gRPC endpoint to give ``ZerobusWrapper`` (``http://127.0.0.1:PORT``)."""
        return self.raw.endpoint

    @property
    def unity_catalog_url(self) -> str:
        """The OAuth token and Unity Catalog URL (``http://127.0.0.1:PORT``)."""
        return self.raw.unity_catalog_url

    @property
    def client_id(self) -> str:
        """The OAuth client id the server accepts."""
        return self.raw.client_id

    @property
    def client_secret(self) -> str:
        """The OAuth client secret the server accepts (a test secret)."""
        return self.raw.client_secret

    @property
    def data_dir(self) -> Path:
        """Where Delta tables are written (``landing="delta"``)."""
        return Path(self.raw.data_dir)

    def connection_options(self) -> dict[str, str]:
        """``endpoint`` and, with ``auth=True``, ``unity_catalog_url``, ``client_id`` and
        ``client_secret``: ``ZerobusWrapper(**server.connection_options(), table_name=...)``."""
        options = {"endpoint": self.endpoint}
        if self.raw.auth:
            options |= {
                "unity_catalog_url": self.unity_catalog_url,
                "client_id": self.client_id,
                "client_secret": self.client_secret,
            }
        return options

    def tables(self) -> list[str]:
        """The tables that exist, sorted."""
        return self.raw.tables()

    def read_table(self, name: str) -> pa.Table:
        """Every row landed in ``name`` so far."""
        return pa.Table.from_batches([self.raw.read_table(name)])

    def counters(self, name: str) -> dict[str, int]:
        """Record counts of ``name``: ``received``, ``requests``, ``committed``,
        ``acknowledged``, ``duplicates``, ``streams_opened``, Flight batches by codec."""
        return self.raw.counters(name)

    # Faults, per table.

    def fail_stream_creation(self, table: str, times: int, code: str = "unavailable") -> None:
        """The next ``times`` stream creations fail with gRPC ``code``."""
        self.raw.fail_stream_creation(table, times, code)

    def fail_after_records(self, table: str, records: int, code: str = "unavailable") -> None:
        """Once ``records`` more records arrive, the stream ends with ``code`` (once)."""
        self.raw.fail_after_records(table, records, code)

    def close_stream_after_records(self, table: str, records: int) -> None:
        """Once ``records`` more records arrive, the stream is asked to close (once)."""
        self.raw.close_stream_after_records(table, records)

    def delay_acks(self, table: str, seconds: float | None) -> None:
        """Acknowledgements go out ``seconds`` late (``None``: at once)."""
        self.raw.delay_acks(table, seconds)

    def withhold_acks(self, table: str, withhold: bool = True) -> None:
        """While ``withhold``, no acknowledgement is sent."""
        self.raw.withhold_acks(table, withhold)

    def reject_connections(self, table: str, reject: bool = True) -> None:
        """While ``reject``, new streams are refused with ``UNAUTHENTICATED``."""
        self.raw.reject_connections(table, reject)

    def reject_records_containing(self, table: str, pattern: bytes | None) -> None:
        """Requests with a record containing ``pattern`` are refused (``None``: off)."""
        self.raw.reject_records_containing(table, pattern)

    def clear_faults(self, table: str) -> None:
        """Switches every fault of ``table`` off."""
        self.raw.clear_faults(table)

    def expire_tokens(self) -> None:
        """Every token issued so far is expired."""
        self.raw.expire_tokens()

    def restart(self) -> None:
        """Stops and restarts the server on the same ports, keeping what landed."""
        self.raw.restart()

    def shutdown(self) -> None:
        """Stops the server (idempotent)."""
        if self._raw is not None:
            self._raw.shutdown()
            self._raw = None

    def __enter__(self) -> LocalZerobus:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.shutdown()

    async def __aenter__(self) -> LocalZerobus:
        return self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.shutdown()

    def __repr__(self) -> str:
        state = f"endpoint={self.endpoint!r}" if self._raw is not None else "not started"
        return f"LocalZerobus({state}, landing={self._options['landing']!r})"
