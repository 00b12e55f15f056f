"""ZerobusWrapper against the local server over real gRPC: both transports, async and sync,
every input kind, results read back value by value, errors as named exceptions."""

from __future__ import annotations

import asyncio
import threading
import time

import pyarrow as pa
import pytest

import arrow_zerobus_sdk_wrapper as zb
from arrow_zerobus_sdk_wrapper import (
    ConfigurationError,
    ConversionError,
    ShutdownError,
    TransmissionResult,
    WrapperConfiguration,
    ZerobusError,
    ZerobusWrapper,
)
from arrow_zerobus_sdk_wrapper.testing import LocalZerobus

TABLE = "main.demo.events"
SCHEMA = pa.schema([pa.field("id", pa.int64(), nullable=False), ("name", pa.string())])
TRANSPORTS = ["protobuf", "arrow_flight"]


def rows(start: int, count: int) -> pa.RecordBatch:
    ids = list(range(start, start + count))
    names = [None if i % 7 == 3 else f"name-{i}" for i in ids]
    return pa.record_batch([pa.array(ids, pa.int64()), pa.array(names)], schema=SCHEMA)


def landed(server: LocalZerobus, table: str = TABLE) -> list[tuple[int, str | None]]:
    """The landed rows, sorted by id, as (id, name) pairs."""
    read = server.read_table(table).sort_by("id")
    return list(zip(read.column("id").to_pylist(), read.column("name").to_pylist()))


def expected(*batches: pa.RecordBatch) -> list[tuple[int, str | None]]:
    table = pa.Table.from_batches(batches).sort_by("id")
    return list(zip(table.column("id").to_pylist(), table.column("name").to_pylist()))


@pytest.fixture
def server():
    with LocalZerobus({TABLE: SCHEMA}) as server:
        yield server


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_send_batch_sync_lands_every_row(server, transport):
    with ZerobusWrapper(server.endpoint, TABLE, transport=transport) as wrapper:
        assert wrapper.config.transport == transport
        first, second = rows(0, 100), rows(100, 50)
        result = wrapper.send_batch_sync(first)
        assert isinstance(result, TransmissionResult)
        assert (result.success, result.total_rows, result.successful_count) == (True, 100, 100)
        assert result.failed_rows == [] and not result.has_failed_rows()
        assert result.successful_rows == list(range(100))
        assert result.attempts >= 1 and result.batch_size_bytes > 0
        assert wrapper.send_batch_sync(second).successful_count == 50
    assert landed(server) == expected(first, second)


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_send_batch_async_and_async_with(server, transport):
    async def main() -> TransmissionResult:
        async with ZerobusWrapper(server.endpoint, TABLE, transport=transport) as wrapper:
            result = await wrapper.send_batch(rows(0, 10))
            await wrapper.flush()
            return result

    result = asyncio.run(main())
    assert result.successful_count == 10
    assert landed(server) == expected(rows(0, 10))


def test_thirty_two_concurrent_async_sends_are_all_accounted_for(server):
    batches = [rows(i * 100, 100) for i in range(32)]

    async def main() -> list[TransmissionResult]:
        async with ZerobusWrapper(server.endpoint, TABLE) as wrapper:
            return list(await asyncio.gather(*(wrapper.send_batch(b) for b in batches)))

    results = asyncio.run(main())
    assert sum(r.successful_count for r in results) == 3200
    assert landed(server) == expected(*batches)
    assert server.counters(TABLE)["duplicates"] == 0


def test_eight_threads_on_the_sync_api_are_all_accounted_for(server):
    batches = [rows(i * 1000, 1000) for i in range(8)]
    results: list[TransmissionResult] = []
    with ZerobusWrapper(server.endpoint, TABLE) as wrapper:
        threads = [
            threading.Thread(target=lambda b=b: results.append(wrapper.send_batch_sync(b)))
            for b in batches
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert sorted(r.successful_count for r in results) == [1000] * 8
    assert landed(server) == expected(*batches)


def test_the_gil_is_released_while_a_send_waits(server):
    """A second Python thread makes progress while a send is blocked on slow acks."""
    server.delay_acks(TABLE, 0.5)
    ticks = 0
    done = threading.Event()

    def count() -> None:
        nonlocal ticks
        while not done.is_set():
            ticks += 1
            time.sleep(0.001)

    counter = threading.Thread(target=count)
    counter.start()
    with ZerobusWrapper(server.endpoint, TABLE) as wrapper:
        started = time.monotonic()
        wrapper.send_batch_sync(rows(0, 10))
        waited = time.monotonic() - started
    done.set()
    counter.join()
    assert waited >= 0.45
    # Held GIL: the counter would not run at all during the wait.
    assert ticks > 50, ticks


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_send_streams_tables_readers_and_polars_frames(server, transport):
    import polars as pl

    table = pa.Table.from_batches([rows(0, 1000), rows(1000, 1000)])
    reader = pa.RecordBatchReader.from_batches(SCHEMA, [rows(2000, 500), rows(2500, 500)])
    frame = pl.from_arrow(pa.Table.from_batches([rows(3000, 300)]))
    with ZerobusWrapper(server.endpoint, TABLE, transport=transport) as wrapper:
        assert wrapper.send_sync(table).successful_count == 2000
        assert wrapper.send_sync(reader, max_inflight_batches=1).successful_count == 1000
        result = wrapper.send_sync(frame)
        assert (result.total_rows, result.successful_count) == (300, 300)
        # One batch with __arrow_c_array__ is a stream of one.
        assert wrapper.send_sync(rows(4000, 10)).successful_count == 10
    assert landed(server) == expected(
        rows(0, 2000), rows(2000, 1000), rows(3000, 300), rows(4000, 10)
    )


def test_send_async_streams_too(server):
    async def main() -> TransmissionResult:
        async with ZerobusWrapper(server.endpoint, TABLE) as wrapper:
            return await wrapper.send(pa.Table.from_batches([rows(0, 500)]))

    assert asyncio.run(main()).successful_count == 500
    assert landed(server) == expected(rows(0, 500))


def test_duckdb_relations_and_nanoarrow_streams_are_inputs(server):
    duckdb = pytest.importorskip("duckdb")
    nanoarrow = pytest.importorskip("nanoarrow")
    relation = duckdb.sql(
        "SELECT i::BIGINT AS id, 'duck-' || i::VARCHAR AS name FROM range(0, 1000) t(i)"
    )
    stream = nanoarrow.c_array_stream(pa.Table.from_batches([rows(5000, 100)]))
    with ZerobusWrapper(server.endpoint, TABLE) as wrapper:
        assert wrapper.send_sync(relation).successful_count == 1000
        assert wrapper.send_sync(stream).successful_count == 100
    got = landed(server)
    assert got[:3] == [(0, "duck-0"), (1, "duck-1"), (2, "duck-2")]
    assert got[1000:] == expected(rows(5000, 100))


def test_failed_rows_are_named_exceptions_and_the_rest_lands():
    schema = pa.schema([("id", pa.int64()), ("counter", pa.uint64())])
    batch = pa.record_batch(
        {"id": [1, 2, 3, 4], "counter": pa.array([1, 2**64 - 1, 3, 2**63], pa.uint64())}
    )
    with LocalZerobus({TABLE: schema.remove(1).append(pa.field("counter", pa.int64()))}) as server:
        with ZerobusWrapper(server.endpoint, TABLE) as wrapper:
            result = wrapper.send_batch_sync(batch)
        assert result.success and result.is_partial_success()
        assert result.get_failed_row_indices() == [1, 3]
        assert result.get_successful_row_indices() == [0, 2]
        for row, error in result.failed_rows:
            assert isinstance(error, ConversionError) and isinstance(error, ZerobusError)
            assert (error.kind, error.column, error.row) == ("ValueOutOfRange", "counter", row)
            assert not error.is_retryable and error.error_type == "ConversionError"
            assert f"row {row}" not in str(error)  # the row is in the pair, not the text
        assert result.group_errors_by_type() == {"ConversionError": [1, 3]}
        stats = result.get_error_statistics()
        assert stats["success_rate"] == 0.5 and stats["error_type_counts"] == {"ConversionError": 2}
        messages = result.get_error_messages()
        assert messages[0].startswith("row 1: Conversion error: column `counter`")
        failed = result.extract_failed_batch(batch)
        assert failed.column("id").to_pylist() == [2, 4]
        assert result.extract_successful_batch(batch).column("id").to_pylist() == [1, 3]
        assert server.read_table(TABLE).column("id").to_pylist() == [1, 3]
        assert "failed_count=2" in repr(result)


def test_stream_results_number_rows_across_batches_and_keep_failed_rows(server):
    bad = pa.record_batch(
        [pa.array([1, 2], pa.int64()), pa.array(["x" * 20, "ok"])], schema=SCHEMA
    )
    with ZerobusWrapper(server.endpoint, TABLE, max_record_size_bytes=16) as wrapper:
        result = wrapper.send_sync(
            pa.Table.from_batches([rows(10, 3), bad]), keep_failed_rows=True
        )
    # Row 3 of the stream is row 0 of the second batch: its record is over 16 bytes.
    assert result.total_rows == 5 and result.get_failed_row_indices() == [3]
    (row, error), = result.failed_rows
    assert row == 3 and error.row == 3 and error.kind == "RecordTooLarge"
    (failed,) = result.failed_batches
    assert failed.column("id").to_pylist() == [1]


def test_bad_input_is_a_type_error_naming_the_argument(server):
    with ZerobusWrapper(server.endpoint, TABLE) as wrapper:
        with pytest.raises(TypeError, match="^batch: expected a pyarrow.RecordBatch"):
            wrapper.send_batch_sync([1, 2, 3])
        with pytest.raises(TypeError, match="use send\\(\\) for it"):
            wrapper.send_batch_sync(pa.table({"id": [1]}))
        with pytest.raises(TypeError, match="^data: expected an object with __arrow_c_stream__"):
            wrapper.send_sync({"id": [1]})
        with pytest.raises(ValueError, match="max_inflight_batches"):
            wrapper.send_sync(rows(0, 1), max_inflight_batches=0)
    with pytest.raises(TypeError, match="^table_name: expected a str"):
        ZerobusWrapper(server.endpoint, 42)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="^endpoint: expected a str or a WrapperConfiguration"):
        ZerobusWrapper(None)  # type: ignore[arg-type]
    assert server.tables() == [TABLE] and server.counters(TABLE)["received"] == 0


def test_unsupported_types_fail_up_front_naming_the_column(server):
    with ZerobusWrapper(server.endpoint, TABLE) as wrapper:
        with pytest.raises(ConversionError, match="column `t`.*Time64") as raised:
            wrapper.send_batch_sync(pa.record_batch({"t": pa.array([1], pa.time64("us"))}))
    assert raised.value.kind == "UnsupportedType" and raised.value.column == "t"
    assert server.counters(TABLE)["received"] == 0


def test_a_closed_wrapper_raises_shutdown_error(server):
    wrapper = ZerobusWrapper(server.endpoint, TABLE)
    wrapper.shutdown_sync()
    wrapper.shutdown_sync()  # idempotent
    with pytest.raises(ShutdownError) as raised:
        wrapper.send_batch_sync(rows(0, 1))
    assert not raised.value.is_retryable


def test_bad_configuration_raises_configuration_error_naming_the_option():
    with pytest.raises(ConfigurationError, match="table_name"):
        ZerobusWrapper("https://example.cloud.databricks.com", "a..b")
    with pytest.raises(ConfigurationError, match="client_id"):
        ZerobusWrapper("https://example.cloud.databricks.com", "c.s.t")
    with pytest.raises(ValueError, match="^transport: "):
        WrapperConfiguration("http://127.0.0.1:1", "c.s.t", transport="carrier-pigeon")
    with pytest.raises(ValueError, match="client_id and client_secret"):
        WrapperConfiguration("http://127.0.0.1:1", "c.s.t", client_id="only-the-id")


def test_a_dead_endpoint_fails_the_rows_after_the_retries():
    with ZerobusWrapper(
        "http://127.0.0.1:9", TABLE, retry_max_attempts=2, retry_base_delay_ms=1, retry_max_delay_ms=5
    ) as wrapper:
        result = wrapper.send_batch_sync(rows(0, 3))
    assert not result.success and result.failed_count == 3
    assert isinstance(result.error, ZerobusError)
    assert {type(error).__name__ for _, error in result.failed_rows} <= {
        "ConnectionError",
        "RetryExhausted",
    }


def test_wrong_credentials_are_an_authentication_error_and_nothing_lands():
    with LocalZerobus({TABLE: SCHEMA}, auth=True) as server:
        with ZerobusWrapper(
            server.endpoint,
            TABLE,
            unity_catalog_url=server.unity_catalog_url,
            client_id=server.client_id,
            client_secret="not-the-secret",
            retry_max_attempts=1,
        ) as wrapper:
            result = wrapper.send_batch_sync(rows(0, 3))
        assert not result.success
        error = result.error
        assert isinstance(error, zb.AuthenticationError), error
        assert "not-the-secret" not in str(error)
        with ZerobusWrapper(table_name=TABLE, **server.connection_options()) as wrapper:
            assert wrapper.send_batch_sync(rows(0, 3)).successful_count == 3
        assert landed(server) == expected(rows(0, 3))


def test_secrets_never_appear_in_repr_or_errors():
    config = WrapperConfiguration(
        "http://127.0.0.1:9", "c.s.t", client_id="my-id", client_secret="s3cr3t-value"
    )
    assert "s3cr3t-value" not in repr(config)
    assert "<redacted>" in repr(config) and config.has_client_secret
    assert not hasattr(config, "client_secret")
    wrapper = ZerobusWrapper(config)
    assert "s3cr3t-value" not in repr(wrapper)
    wrapper.shutdown_sync()


def test_configuration_from_yaml_and_env(tmp_path, monkeypatch):
    path = tmp_path / "zerobus.yaml"
    path.write_text("endpoint: http://127.0.0.1:1\ntable_name: c.s.t\ntransport: arrow_flight\n")
    config = WrapperConfiguration.from_yaml(path)
    assert (config.endpoint, config.table_name, config.transport) == (
        "http://127.0.0.1:1",
        "c.s.t",
        "arrow_flight",
    )
    config.validate()
    monkeypatch.setenv("ZEROBUS_ENDPOINT", "http://127.0.0.1:2")
    monkeypatch.setenv("ZEROBUS_TABLE_NAME", "c.s.u")
    assert WrapperConfiguration.from_env().table_name == "c.s.u"
    assert zb.PyWrapperConfiguration is WrapperConfiguration


def test_ctrl_c_interrupts_a_blocking_send(tmp_path):
    """A send blocked on withheld acks ends with KeyboardInterrupt on SIGINT, promptly,
    and the interpreter stays healthy (it prints and exits normally)."""
    import signal
    import subprocess
    import sys

    script = tmp_path / "blocked.py"
    script.write_text(
        """
import sys, time
import pyarrow as pa
from arrow_zerobus_sdk_wrapper import ZerobusWrapper
from arrow_zerobus_sdk_wrapper.testing import LocalZerobus

with LocalZerobus() as server:
    server.withhold_acks("main.demo.t")
    wrapper = ZerobusWrapper(server.endpoint, "main.demo.t", retry_max_attempts=1)
    print("sending", flush=True)
    started = time.monotonic()
    try:
        wrapper.send_batch_sync(pa.record_batch({"id": [1, 2, 3]}))
    except KeyboardInterrupt:
        print(f"interrupted after {time.monotonic() - started:.1f} s", flush=True)
        sys.exit(0)
    print("not interrupted", flush=True)
    sys.exit(3)
"""
    )
    child = subprocess.Popen(
        [sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "sending"
    time.sleep(1.0)
    child.send_signal(signal.SIGINT)
    out, err = child.communicate(timeout=30)
    assert child.returncode == 0, (out, err)
    assert out.startswith("interrupted after"), (out, err)
    assert float(out.split()[2]) < 5.0, out
