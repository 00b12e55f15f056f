"""DataFusion SQL (datafusion-python) into Zerobus through DataFusion's FFI: ZerobusTable
and the STORED AS ZEROBUS factory against the local server over real gRPC, both
transports, landed rows read back value by value, failures, asyncio and a running loop."""

from __future__ import annotations

import asyncio
import datetime as dt
from decimal import Decimal
from pathlib import Path

import datafusion
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from datafusion import SessionContext

from arrow_zerobus_sdk_wrapper.datafusion import (
    DATAFUSION_MAJOR_VERSION,
    ZerobusTable,
    ZerobusTableFactory,
    register,
)
from arrow_zerobus_sdk_wrapper.testing import LocalZerobus

TABLE = "main.df.events"
SCHEMA = pa.schema([pa.field("id", pa.int64(), nullable=False), ("name", pa.string())])
TRANSPORTS = ["protobuf", "arrow_flight"]
UTC = dt.timezone.utc


def insert(ctx: SessionContext, sql: str) -> int:
    """Runs an INSERT and returns the count DataFusion reports."""
    batches = ctx.sql(sql).collect()
    assert len(batches) == 1 and batches[0].num_rows == 1, batches
    count: int = batches[0].column(0)[0].as_py()
    return count


def landed(server: LocalZerobus, table: str = TABLE) -> list[tuple[object, ...]]:
    """The landed rows, sorted by id, as tuples."""
    read = server.read_table(table).sort_by("id")
    return list(zip(*(read.column(name).to_pylist() for name in read.schema.names)))


def context(table: ZerobusTable, name: str = "events") -> SessionContext:
    ctx = SessionContext()
    ctx.register_table(name, table)
    return ctx


@pytest.fixture
def server():
    with LocalZerobus({TABLE: SCHEMA}) as server:
        yield server


def test_the_datafusion_package_is_the_ffi_major_version():
    assert int(datafusion.__version__.split(".")[0]) == DATAFUSION_MAJOR_VERSION == 55


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_insert_values_lands_and_returns_the_count(server, transport):
    table = ZerobusTable(TABLE, SCHEMA, endpoint=server.endpoint, transport=transport)
    ctx = context(table)
    assert insert(ctx, "INSERT INTO events VALUES (1, 'a'), (2, NULL), (3, 'héllo')") == 3
    assert insert(ctx, "INSERT INTO events (name, id) VALUES ('d', 4)") == 1
    assert landed(server) == [(1, "a"), (2, None), (3, "héllo"), (4, "d")]
    if transport == "arrow_flight":
        assert server.counters(TABLE)["flight_batches_zstd"] > 0


def test_insert_select_from_parquet_files(server, tmp_path):
    source = tmp_path / "source"
    source.mkdir()
    expected = []
    for part in range(3):  # three files: three input partitions, merged for the sink
        ids = list(range(part * 1000, part * 1000 + 1000))
        names = [None if i % 11 == 0 else f"n{i}" for i in ids]
        pq.write_table(pa.table({"id": ids, "name": names}), source / f"part-{part}.parquet")
        expected += list(zip(ids, names))
    ctx = context(ZerobusTable(TABLE, SCHEMA, endpoint=server.endpoint, workers=2))
    ctx.register_parquet("source", str(source))
    sql = "INSERT INTO events SELECT id, name FROM source WHERE id % 2 = 0"
    assert insert(ctx, sql) == 1500
    assert landed(server) == [row for row in expected if row[0] % 2 == 0]


def test_a_parallel_query_with_joins_and_aggregates_lands_every_row(server, tmp_path):
    """DataFusion plans the SELECT in parallel (hash repartitions, joins, aggregates) on its
    own threads; the sink merges every partition."""
    source = tmp_path / "facts"
    source.mkdir()
    for part in range(4):
        ids = [i % 997 for i in range(part * 2500, part * 2500 + 2500)]
        pq.write_table(pa.table({"k": ids, "v": [1] * len(ids)}), source / f"f{part}.parquet")
    ctx = context(ZerobusTable(TABLE, SCHEMA, endpoint=server.endpoint, workers=2))
    ctx.sql("SET datafusion.execution.target_partitions = 8").collect()
    ctx.register_parquet("facts", str(source))
    ctx.register_record_batches(
        "labels", [[pa.record_batch({"k": list(range(997)), "label": [f"L{i}" for i in range(997)]})]]
    )
    sql = """INSERT INTO events
        SELECT f.k, l.label || ':' || CAST(sum(f.v) AS VARCHAR)
        FROM facts f JOIN labels l ON f.k = l.k GROUP BY f.k, l.label"""
    explained = ctx.sql(f"EXPLAIN {sql}").collect()
    plan = "\n".join(line for b in explained for line in b.column(1).to_pylist())
    assert "MergePartitionsExec" in plan, plan
    assert insert(ctx, sql) == 997
    expected = [(k, f"L{k}:{sum(1 for i in range(10_000) if i % 997 == k)}") for k in range(997)]
    assert landed(server) == expected


def test_insert_select_from_a_registered_pyarrow_table(server):
    data = pa.table({"n": pa.array(range(5000), pa.int32()), "label": [f"x{i}" for i in range(5000)]})
    ctx = context(ZerobusTable(TABLE, SCHEMA, endpoint=server.endpoint))
    ctx.register_record_batches("source", [data.to_batches(max_chunksize=700)])
    sql = "INSERT INTO events SELECT CAST(n AS BIGINT) * 10, upper(label) FROM source"
    assert insert(ctx, sql) == 5000
    assert landed(server) == [(i * 10, f"X{i}") for i in range(5000)]


@pytest.mark.parametrize(
    "source",
    ["range(1000000)", "generate_series(0, 999999)"],
)
def test_a_million_rows_from_a_table_function(source):
    big = "main.df.big"
    n = 1_000_000
    with LocalZerobus({big: SCHEMA}) as server:
        table = ZerobusTable(big, SCHEMA, endpoint=server.endpoint, transport="arrow_flight")
        ctx = context(table, "big")
        sql = f"INSERT INTO big SELECT value, 'row-' || CAST(value AS VARCHAR) FROM {source}"
        assert insert(ctx, sql) == n
        read = server.read_table(big).sort_by("id")
    assert read.num_rows == n
    assert read.column("id").combine_chunks().equals(pa.array(range(n), pa.int64()))
    assert read.column("name").combine_chunks().cast(pa.string()).equals(
        pa.array([f"row-{i}" for i in range(n)], pa.string())
    )


# The tables of sql/types.slt and sql/maps.slt, declared with pyarrow.
SCALARS = pa.schema(
    [
        pa.field("id", pa.int64(), nullable=False),
        ("i32", pa.int32()),
        ("i16", pa.int16()),
        ("i8", pa.int8()),
        ("f32", pa.float32()),
        ("f64", pa.float64()),
        ("flag", pa.bool_()),
        ("s", pa.string()),
        ("b", pa.binary()),
        ("d", pa.date32()),
        ("ts_ntz", pa.timestamp("us")),
        ("ts_tz", pa.timestamp("us", tz="UTC")),
        ("price", pa.decimal128(10, 2)),
    ]
)
NESTED = pa.schema(
    [
        pa.field("id", pa.int64(), nullable=False),
        ("tags", pa.list_(pa.string())),
        ("point", pa.struct([("x", pa.float64()), ("y", pa.float64())])),
        ("items", pa.list_(pa.struct([("sku", pa.string()), ("qty", pa.int32())]))),
    ]
)
MAPS = pa.schema([pa.field("id", pa.int64(), nullable=False), ("tags", pa.map_(pa.string(), pa.int64()))])


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_every_type_of_the_sql_suite_lands_value_by_value(transport):
    names = {"main.types.scalars": SCALARS, "main.types.nested": NESTED, "main.types.maps": MAPS}
    with LocalZerobus(names) as server:
        ctx = SessionContext()
        for name, schema in names.items():
            short = name.rsplit(".", 1)[1]
            table = ZerobusTable(name, schema, endpoint=server.endpoint, transport=transport)
            ctx.register_table(short, table)
        assert insert(ctx, """INSERT INTO scalars VALUES
            (1, 2147483647, 32767, 127, 1.5, 2.25, true, 'héllo', X'00FF', DATE '2024-02-29',
             TIMESTAMP '2024-01-02 03:04:05.123456', TIMESTAMP '2024-01-02 03:04:05.5Z',
             12345678.91),
            (2, -2147483648, -32768, -128, -0.5, -1e300, false, '', X'', DATE '1970-01-01',
             TIMESTAMP '1970-01-01 00:00:00', TIMESTAMP '1999-12-31 23:59:59+01:00', -0.01),
            (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)
        """) == 3
        assert insert(ctx, """INSERT INTO nested VALUES
            (1, ['a', 'b'], named_struct('x', 1.0, 'y', 2.0),
             [named_struct('sku', 'k1', 'qty', 1), named_struct('sku', 'k2', 'qty', 2)]),
            (2, [], named_struct('x', -1.0, 'y', NULL), []),
            (3, NULL, NULL, NULL)
        """) == 3
        assert insert(ctx, """INSERT INTO maps
            VALUES (1, MAP {'a': 1, 'b': 2, 'c': 3}), (3, MAP {}), (4, NULL)
            UNION ALL SELECT 2, map(['k', 'l'], [7, -8])
        """) == 4
        scalars = landed(server, "main.types.scalars")
        nested = landed(server, "main.types.nested")
        maps = landed(server, "main.types.maps")
    assert scalars == [
        (1, 2147483647, 32767, 127, 1.5, 2.25, True, "héllo", b"\x00\xff",
         dt.date(2024, 2, 29), dt.datetime(2024, 1, 2, 3, 4, 5, 123456),
         dt.datetime(2024, 1, 2, 3, 4, 5, 500000, tzinfo=UTC), Decimal("12345678.91")),
        (2, -2147483648, -32768, -128, -0.5, -1e300, False, "", b"",
         dt.date(1970, 1, 1), dt.datetime(1970, 1, 1),
         dt.datetime(1999, 12, 31, 22, 59, 59, tzinfo=UTC), Decimal("-0.01")),
        (3, *[None] * 12),
    ]  # fmt: skip
    # Protobuf cannot tell a null list (or map) from an empty one: both land as empty.
    null_list = [] if transport == "protobuf" else None
    assert nested == [
        (1, ["a", "b"], {"x": 1.0, "y": 2.0},
         [{"sku": "k1", "qty": 1}, {"sku": "k2", "qty": 2}]),
        (2, [], {"x": -1.0, "y": None}, []),
        (3, null_list, None, null_list),
    ]  # fmt: skip
    assert maps == [
        (1, [("a", 1), ("b", 2), ("c", 3)]),
        (2, [("k", 7), ("l", -8)]),
        (3, []),
        (4, null_list),
    ]


FAILING_SCHEMA = pa.schema(
    [pa.field("id", pa.int64(), nullable=False), ("tags", pa.list_(pa.int32())), ("note", pa.string())]
)
# Input rows 1 (NULL id), 2 (a null list element) and 3 (a 500-byte record) fail.
FAILING_INSERT = """INSERT INTO strict_t VALUES (1, [1], 'ok'), (NULL, [2], 'no id'),
    (3, [1, NULL], 'null element'), (4, [], repeat('x', 500)), (5, NULL, NULL)"""


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_a_partial_failure_raises_naming_the_reasons_and_the_good_rows_land(transport):
    name = "main.failures.strict"
    with LocalZerobus({name: FAILING_SCHEMA}) as server:
        table = ZerobusTable(
            name,
            FAILING_SCHEMA,
            endpoint=server.endpoint,
            transport=transport,
            max_record_size_bytes=200,
        )
        ctx = context(table, "strict_t")
        with pytest.raises(Exception) as raised:
            ctx.sql(FAILING_INSERT).collect()
        got = landed(server, name)
    text = str(raised.value)  # datafusion-python raises DataFusion errors as Exception
    assert text.startswith("DataFusion error"), text
    assert "INSERT into Zerobus table main.failures.strict: 2 row(s) landed, 3 row(s) failed" in text
    assert "1 × ConversionError (NullInNonNullableColumn) (first: input row 1: " in text
    assert "column 'id' is declared NOT NULL but the row holds a null" in text
    assert "1 × ConversionError (NullListElement) (first: input row 2: " in text
    assert "1 × ConversionError (RecordTooLarge) (first: input row 3: " in text
    assert [(row[0], row[2]) for row in got] == [(1, "ok"), (5, None)]


def test_quarantine_lands_the_good_rows_and_files_the_failed_ones(tmp_path):
    name = "main.failures.lenient"
    quarantine = tmp_path / "quarantine"
    with LocalZerobus({name: FAILING_SCHEMA}) as server:
        table = ZerobusTable(
            name,
            FAILING_SCHEMA,
            endpoint=server.endpoint,
            max_record_size_bytes=200,
            on_error="quarantine",
            quarantine_dir=quarantine,
        )
        assert insert(context(table, "strict_t"), FAILING_INSERT) == 2
        got = landed(server, name)
    assert [(row[0], row[2]) for row in got] == [(1, "ok"), (5, None)]
    files = sorted(quarantine.glob("*.arrow"))
    assert len(files) == 1, files
    with pa.ipc.open_stream(files[0]) as reader:
        failed = reader.read_all().sort_by("_zerobus_input_row")
    assert failed.column("id").to_pylist() == [None, 3, 4]
    assert failed.column("tags").to_pylist() == [[2], [1, None], []]
    assert failed.column("note").to_pylist() == ["no id", "null element", "x" * 500]
    assert failed.column("_zerobus_input_row").to_pylist() == [1, 2, 3]
    assert failed.column("_zerobus_error_type").to_pylist() == [
        "ConversionError (NullInNonNullableColumn)",
        "ConversionError (NullListElement)",
        "ConversionError (RecordTooLarge)",
    ]
    assert failed.column("_zerobus_error").to_pylist()[0] == (
        "Conversion error: column 'id' is declared NOT NULL but the row holds a null"
    )


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_create_external_table_stored_as_zerobus(server, transport):
    ctx = SessionContext()
    register(ctx, env={"ZEROBUS_ENDPOINT": server.endpoint})
    ctx.sql(f"""CREATE EXTERNAL TABLE events (id BIGINT NOT NULL, name VARCHAR)
        STORED AS zerobus LOCATION '{TABLE}'
        OPTIONS ('transport' '{transport}', 'workers' '1')""").collect()
    assert insert(ctx, "INSERT INTO events VALUES (1, 'a'), (2, NULL)") == 2
    assert insert(ctx, "INSERT INTO events SELECT value + 10, 'v' FROM range(3)") == 3
    assert landed(server) == [(1, "a"), (2, None), (10, "v"), (11, "v"), (12, "v")]


def test_the_schema_is_read_from_unity_catalog_when_not_given(server):
    table = ZerobusTable(TABLE, endpoint=server.endpoint, unity_catalog_url=server.unity_catalog_url)
    assert table.schema.field("id").type == pa.int64()
    assert not table.schema.field("id").nullable
    assert insert(context(table), "INSERT INTO events VALUES (7, 'uc')") == 1

    ctx = SessionContext()
    ctx.register_table_factory("ZEROBUS", ZerobusTableFactory())
    ctx.sql(f"""CREATE EXTERNAL TABLE from_uc STORED AS ZEROBUS LOCATION '{TABLE}'
        OPTIONS ('endpoint' '{server.endpoint}',
                 'unity_catalog_url' '{server.unity_catalog_url}')""").collect()
    assert insert(ctx, "INSERT INTO from_uc VALUES (8, 'ddl')") == 1
    assert landed(server) == [(7, "uc"), (8, "ddl")]


def test_factory_errors_name_the_option(server):
    ctx = SessionContext()
    register(ctx, env={})
    with pytest.raises(Exception, match="Zerobus table option 'endpoint': missing"):
        ctx.sql(f"CREATE EXTERNAL TABLE t (id BIGINT) STORED AS ZEROBUS LOCATION '{TABLE}'").collect()
    with pytest.raises(Exception, match="unknown Zerobus table option 'format.endpiont'; known options"):
        ctx.sql(
            f"CREATE EXTERNAL TABLE t (id BIGINT) STORED AS ZEROBUS LOCATION '{TABLE}' "
            "OPTIONS ('endpiont' 'x')"
        ).collect()


def test_reading_the_table_is_a_clear_error(server):
    ctx = context(ZerobusTable(TABLE, SCHEMA, endpoint=server.endpoint))
    with pytest.raises(Exception, match="write-only table"):
        ctx.sql("SELECT * FROM events").collect()
    with pytest.raises(Exception, match="INSERT OVERWRITE is not supported"):
        ctx.sql("INSERT OVERWRITE events VALUES (1, 'a')").collect()


def test_bad_options_and_schemas_are_value_errors_naming_them():
    with pytest.raises(ValueError, match="option 'workers': must be at least 1"):
        ZerobusTable(TABLE, SCHEMA, endpoint="http://127.0.0.1:9", workers=0)
    with pytest.raises(ValueError, match="quarantine_dir"):
        ZerobusTable(TABLE, SCHEMA, endpoint="http://127.0.0.1:9", on_error="quarantine")
    with pytest.raises(ValueError, match="transport"):
        ZerobusTable(TABLE, SCHEMA, endpoint="http://127.0.0.1:9", transport="carrier-pigeon")
    timely = pa.schema([("id", pa.int64()), ("t", pa.time64("us"))])
    with pytest.raises(ValueError, match="column `t`.*Delta has no TIME type"):
        ZerobusTable(TABLE, timely, endpoint="http://127.0.0.1:9")
    with pytest.raises(ValueError, match="schema: not an Arrow schema"):
        ZerobusTable(TABLE, "id BIGINT", endpoint="http://127.0.0.1:9")
    with pytest.raises(TypeError, match="workers"):
        ZerobusTable(TABLE, SCHEMA, endpoint="http://127.0.0.1:9", workers=1.5)  # type: ignore[arg-type]


def test_another_datafusion_major_version_is_a_clear_error_not_a_crash(server, monkeypatch):
    table = ZerobusTable(TABLE, SCHEMA, endpoint=server.endpoint)
    monkeypatch.setattr(datafusion, "__version__", "54.1.0")
    ctx = SessionContext()
    wanted = r"`datafusion` package is 54\.1\.0, but .* DataFusion 55 .*datafusion==55\.\*"
    with pytest.raises(ImportError, match=wanted):
        ctx.register_table("events", table)
    with pytest.raises(ImportError, match=wanted):
        register(ctx)
    monkeypatch.undo()
    ctx.register_table("events", table)
    assert insert(ctx, "INSERT INTO events VALUES (1, 'after')") == 1
    assert landed(server) == [(1, "after")]


def test_credentials_work_and_the_secret_never_shows():
    with LocalZerobus({TABLE: SCHEMA}, auth=True) as server:
        wrong = ZerobusTable(
            TABLE,
            SCHEMA,
            endpoint=server.endpoint,
            unity_catalog_url=server.unity_catalog_url,
            client_id=server.client_id,
            client_secret="not-the-secret-42",
            retry_max_attempts=1,
        )
        assert "not-the-secret-42" not in repr(wrong)
        assert "client_secret='<redacted>'" in repr(wrong)
        with pytest.raises(Exception) as raised:
            insert(context(wrong), "INSERT INTO events VALUES (1, 'a')")
        assert "not-the-secret-42" not in str(raised.value)
        right = ZerobusTable(TABLE, SCHEMA, **server.connection_options())
        assert insert(context(right), "INSERT INTO events VALUES (2, 'b')") == 1
        assert landed(server) == [(2, "b")]


def test_a_running_event_loop_and_asyncio_programs(server):
    """Jupyter runs cells inside a running event loop: a synchronous collect() there works,
    and so do INSERTs on worker threads of an asyncio program, several at once."""
    table = ZerobusTable(TABLE, SCHEMA, endpoint=server.endpoint)

    async def main() -> list[int]:
        asyncio.get_running_loop()  # the loop is running, as in a notebook cell
        ctx = context(table)
        first = insert(ctx, "INSERT INTO events VALUES (0, 'in the loop')")
        more = await asyncio.gather(
            *(
                asyncio.to_thread(insert, ctx, f"INSERT INTO events VALUES ({i}, 'thread')")
                for i in range(1, 5)
            )
        )
        return [first, *more]

    assert asyncio.run(main()) == [1, 1, 1, 1, 1]
    assert landed(server) == [(0, "in the loop"), *[(i, "thread") for i in range(1, 5)]]


def test_repr_and_properties(server, tmp_path: Path):
    table = ZerobusTable(
        TABLE,
        SCHEMA,
        endpoint=server.endpoint,
        transport="arrow_flight",
        workers=3,
        on_error="quarantine",
        quarantine_dir=tmp_path,
    )
    assert (table.table_name, table.endpoint, table.transport) == (
        TABLE,
        server.endpoint,
        "arrow_flight",
    )
    assert (table.workers, table.on_error) == (3, "quarantine")
    assert table.schema == SCHEMA
    assert repr(table).startswith(f"ZerobusTable(table_name='{TABLE}'")
    assert "client_secret=None" in repr(table)
