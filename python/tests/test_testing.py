"""arrow_zerobus_sdk_wrapper.testing: the local server in-process, its faults, and the
pytest fixture; plus memory behaviour of send (no copy of the input)."""

from __future__ import annotations

import asyncio
import resource

import polars as pl
import pyarrow as pa
import pytest

from arrow_zerobus_sdk_wrapper import ZerobusWrapper
from arrow_zerobus_sdk_wrapper.testing import LocalZerobus

TABLE = "main.testing.t"
SCHEMA = pa.schema([("id", pa.int64()), ("name", pa.string())])


def batch(start: int, count: int) -> pa.RecordBatch:
    ids = list(range(start, start + count))
    return pa.record_batch([pa.array(ids, pa.int64()), pa.array([f"n{i}" for i in ids])], SCHEMA)


def test_the_fixture_serves_and_reads_back(zerobus_local):
    assert zerobus_local.endpoint.startswith("http://127.0.0.1:")
    with ZerobusWrapper(zerobus_local.endpoint, TABLE) as wrapper:
        wrapper.send_batch_sync(batch(0, 3))
    assert zerobus_local.tables() == [TABLE]
    assert zerobus_local.read_table(TABLE).column("id").to_pylist() == [0, 1, 2]
    counters = zerobus_local.counters(TABLE)
    assert (counters["received"], counters["acknowledged"], counters["streams_opened"]) == (3, 3, 1)


def test_declared_tables_refuse_streams_that_do_not_fit():
    with LocalZerobus().table(TABLE, pa.schema([("id", pa.int32())])) as server:
        with ZerobusWrapper(server.endpoint, TABLE, retry_max_attempts=1) as wrapper:
            result = wrapper.send_batch_sync(batch(0, 1))
        assert not result.success
        assert "name" in str(result.error)
        with pytest.raises(RuntimeError, match="before the server starts"):
            server.table("main.testing.late", SCHEMA)


def test_strict_servers_refuse_unknown_tables():
    with LocalZerobus(strict=True) as server:
        with ZerobusWrapper(server.endpoint, TABLE, retry_max_attempts=1) as wrapper:
            result = wrapper.send_batch_sync(batch(0, 1))
        assert not result.success and "does not exist" in str(result.error)


def test_faults_are_recovered_from_without_losing_a_row():
    with LocalZerobus({TABLE: SCHEMA}) as server:
        server.fail_after_records(TABLE, 150, "unavailable")
        server.close_stream_after_records(TABLE, 420)
        server.fail_stream_creation(TABLE, 1, "unavailable")
        with ZerobusWrapper(
            server.endpoint, TABLE, retry_base_delay_ms=1, retry_max_delay_ms=20
        ) as wrapper:
            results = [wrapper.send_batch_sync(batch(i * 100, 100)) for i in range(10)]
        assert sum(r.successful_count for r in results) == 1000
        ids = server.read_table(TABLE).column("id").to_pylist()
        assert set(ids) == set(range(1000))
        counters = server.counters(TABLE)
        # Resent rows are counted, not hidden.
        assert counters["received"] == len(ids) and counters["duplicates"] == len(ids) - 1000
        assert counters["streams_opened"] >= 3


def test_restart_keeps_what_landed_and_delta_tables_are_on_disk(tmp_path):
    with LocalZerobus({TABLE: SCHEMA}, landing="delta", data_dir=tmp_path, commit_interval_ms=20) as server:
        with ZerobusWrapper(server.endpoint, TABLE) as wrapper:
            wrapper.send_batch_sync(batch(0, 10))
            server.restart()
            wrapper.send_batch_sync(batch(10, 10))
        assert server.data_dir == tmp_path
        assert sorted(server.read_table(TABLE).column("id").to_pylist()) == list(range(20))
    landed = pl.read_delta(str(tmp_path / "main" / "testing" / "t")).sort("id")
    assert landed["id"].to_list() == list(range(20))


def test_oauth_servers_give_their_credentials_as_connection_options():
    with LocalZerobus(auth=True, client_id="me", client_secret="test-secret") as server:
        options = server.connection_options()
        assert options == {
            "endpoint": server.endpoint,
            "unity_catalog_url": server.unity_catalog_url,
            "client_id": "me",
            "client_secret": "test-secret",
        }
        with ZerobusWrapper(table_name=TABLE, **options) as wrapper:
            assert wrapper.send_batch_sync(batch(0, 2)).successful_count == 2
        server.expire_tokens()


def test_async_with_and_bad_arguments():
    async def main() -> int:
        async with LocalZerobus() as server:
            async with ZerobusWrapper(server.endpoint, TABLE) as wrapper:
                await wrapper.send_batch(batch(0, 4))
            return server.read_table(TABLE).num_rows

    assert asyncio.run(main()) == 4
    with pytest.raises(ValueError, match="^landing: expected"):
        LocalZerobus(landing="disk").start()  # type: ignore[arg-type]
    with pytest.raises(ValueError, match='code: "teapot" is not a gRPC status code'):
        with LocalZerobus() as server:
            server.fail_after_records(TABLE, 1, "teapot")
    server = LocalZerobus()
    with pytest.raises(RuntimeError, match="not running"):
        server.endpoint


def test_sending_a_large_table_does_not_copy_it():
    """The input is read zero-copy: sending 2M rows (~50 MB of Arrow) allocates no copy
    through pyarrow's pool, and the process grows by far less than the table."""
    table = pa.table(
        {
            "id": pa.array(range(2_000_000), pa.int64()),
            "name": pa.array([f"name-{i:010d}" for i in range(2_000_000)]),
        }
    ).combine_chunks()
    size = table.nbytes
    pool = pa.default_memory_pool()
    with LocalZerobus(landing="none") as server:
        with ZerobusWrapper(server.endpoint, TABLE) as wrapper:
            wrapper.send_sync(table.slice(0, 1000))  # warm up: stream open, buffers
            allocated_before = pool.bytes_allocated()
            peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
            result = wrapper.send_sync(table.to_reader(max_chunksize=65_536))
            peak_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
            allocated_after = pool.bytes_allocated()
    assert result.successful_count == 2_000_000
    assert allocated_after - allocated_before < size / 100
    # Encoded records in flight stay well under one copy of the table.
    assert peak_after - peak_before < size / 2, (peak_after - peak_before, size)
