"""Polars: LazyFrame.sink_zerobus (streaming), DataFrame.write_zerobus, the zerobus
namespace, Polars' types, and what happens to failed rows."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import polars as pl
import pyarrow as pa
import pytest

import arrow_zerobus_sdk_wrapper  # noqa: F401  (registers the Polars entry points)
from arrow_zerobus_sdk_wrapper import ConversionError, TransmissionResult, WrapperConfiguration
from arrow_zerobus_sdk_wrapper.polars import RowsFailedError
from arrow_zerobus_sdk_wrapper.testing import LocalZerobus

TABLE = "main.polars.events"


def test_sink_zerobus_streams_a_lazy_frame_and_every_row_lands():
    lf = (
        pl.LazyFrame({"id": range(100_000)})
        .with_columns(name=pl.format("row-{}", pl.col("id")), even=pl.col("id") % 2 == 0)
        .filter(pl.col("id") >= 10)
    )
    with LocalZerobus() as server:
        result = lf.sink_zerobus(TABLE, endpoint=server.endpoint, chunk_size=7_000)
        assert isinstance(result, TransmissionResult)
        assert (result.total_rows, result.successful_count) == (99_990, 99_990)
        landed = pl.from_arrow(server.read_table(TABLE)).sort("id")
    assert landed.height == 99_990
    assert landed.equals(lf.collect().sort("id").select(landed.columns))


@pytest.mark.parametrize("transport", ["protobuf", "arrow_flight"])
def test_write_zerobus_and_the_namespace(transport):
    df = pl.DataFrame({"id": [1, 2, 3], "name": ["a", None, "c"]})
    with LocalZerobus() as server:
        df.write_zerobus(TABLE, endpoint=server.endpoint, transport=transport)
        df.with_columns(pl.col("id") + 10).lazy().zerobus.sink(
            TABLE, endpoint=server.endpoint, transport=transport
        )
        df.with_columns(pl.col("id") + 20).zerobus.write(TABLE, endpoint=server.endpoint)
        landed = pl.from_arrow(server.read_table(TABLE)).sort("id")
    assert landed["id"].to_list() == [1, 2, 3, 11, 12, 13, 21, 22, 23]
    assert landed["name"].to_list() == ["a", None, "c"] * 3


def test_a_ready_configuration_works_too():
    with LocalZerobus() as server:
        config = WrapperConfiguration(server.endpoint, TABLE, transport="arrow_flight")
        pl.DataFrame({"id": [1]}).write_zerobus(TABLE, config=config)
        with pytest.raises(ValueError, match="differs from config.table_name"):
            pl.DataFrame({"id": [1]}).write_zerobus("main.polars.other", config=config)
        assert server.read_table(TABLE).num_rows == 1


# The table as Databricks would declare it (so neither transport decides the types).
TYPES_TABLE = pa.schema(
    [
        ("id", pa.int64()),
        ("small", pa.int8()),
        ("text", pa.string()),
        ("blob", pa.binary()),
        ("cat", pa.string()),
        ("enum", pa.string()),
        ("dec", pa.decimal128(10, 2)),
        ("day", pa.date32()),
        ("at_utc", pa.timestamp("us", tz="UTC")),
        ("at_local", pa.timestamp("us")),
        ("tags", pa.list_(pa.int64())),
        ("pair", pa.struct([("a", pa.int64()), ("b", pa.string())])),
        ("fixed", pa.list_(pa.float64())),
    ]
)


@pytest.mark.parametrize("transport", ["protobuf", "arrow_flight"])
def test_polars_types_land_value_by_value(transport):
    df = pl.DataFrame(
        {
            "id": pl.Series([1, 2, 3], dtype=pl.Int64),
            "small": pl.Series([1, None, -3], dtype=pl.Int8),
            "text": ["a", None, "ccc"],
            "blob": pl.Series([b"\x00\x01", b"", None], dtype=pl.Binary),
            "cat": pl.Series(["x", "y", "x"], dtype=pl.Categorical),
            "enum": pl.Series(["lo", "hi", None], dtype=pl.Enum(["lo", "hi"])),
            "dec": pl.Series([Decimal("1.25"), None, Decimal("-3.50")], dtype=pl.Decimal(10, 2)),
            "day": [dt.date(2024, 1, 1), None, dt.date(1970, 1, 1)],
            "at_utc": pl.Series(
                [dt.datetime(2024, 5, 1, 12, 30), None, dt.datetime(2000, 1, 1)],
                dtype=pl.Datetime("us", "UTC"),
            ),
            "at_local": pl.Series(
                [dt.datetime(2024, 5, 1, 12, 30), dt.datetime(1999, 12, 31), None],
                dtype=pl.Datetime("ms"),
            ),
            "tags": [[1, 2], [], None],
            "pair": [{"a": 1, "b": "x"}, None, {"a": None, "b": "z"}],
            "fixed": pl.Series([[1.0, 2.0], [3.0, 4.0], None], dtype=pl.Array(pl.Float64, 2)),
        }
    )
    with LocalZerobus({TABLE: TYPES_TABLE}) as server:
        df.write_zerobus(TABLE, endpoint=server.endpoint, transport=transport)
        landed = server.read_table(TABLE).sort_by("id")
    assert landed.schema.names == df.columns
    want = df.to_arrow()
    for name in df.columns:
        got = landed.column(name).to_pylist()
        expected = want.column(name).to_pylist()
        if name in ("tags", "fixed") and transport == "protobuf":
            # Protobuf cannot tell a null list from an empty one: both are no elements.
            expected = [[] if v is None else v for v in expected]
        assert got == expected, name


@pytest.mark.parametrize(
    ("dtype", "value", "cast"),
    [
        (pl.Time, dt.time(12, 0), "Time64"),
        (pl.Duration("us"), dt.timedelta(seconds=5), "Duration"),
        (pl.Null, None, "Polars type Null has no Delta type.*cast"),
    ],
)
def test_types_without_a_delta_type_fail_up_front_with_the_cast_to_use(dtype, value, cast):
    df = pl.DataFrame({"id": [1], "bad": pl.Series([value], dtype=dtype)})
    with LocalZerobus() as server:
        with pytest.raises(ConversionError, match=f"column `bad`.*{cast}") as raised:
            df.write_zerobus(TABLE, endpoint=server.endpoint)
        assert raised.value.kind == "UnsupportedType"
        assert server.tables() == []


def test_failed_rows_raise_after_the_good_rows_landed_by_default():
    df = pl.DataFrame({"id": [1, 2, 3, 4], "name": ["ok", "x" * 200, "ok", "y" * 300]})
    with LocalZerobus() as server:
        with pytest.raises(RowsFailedError, match=r"^2 of 4 rows failed \(2 × ConversionError\); 2 landed") as raised:
            df.write_zerobus(TABLE, endpoint=server.endpoint, max_record_size_bytes=64)
        assert raised.value.result.get_failed_row_indices() == [1, 3]
        assert server.read_table(TABLE).column("id").to_pylist() == [1, 3]


def test_failed_rows_can_be_returned_or_quarantined(tmp_path):
    lf = pl.LazyFrame({"id": [1, 2, 3, 4], "name": ["ok", "x" * 200, "ok", "y" * 300]})
    with LocalZerobus() as server:
        failed = lf.sink_zerobus(
            TABLE, endpoint=server.endpoint, max_record_size_bytes=64, on_error="return"
        )
        assert isinstance(failed, pl.DataFrame)
        assert failed["id"].to_list() == [2, 4]
        assert failed["name"].to_list() == ["x" * 200, "y" * 300]
        assert all("exceeds Zerobus limit" in e for e in failed["_zerobus_error"])

        quarantine = tmp_path / "failed.arrow"
        result = lf.sink_zerobus(
            TABLE,
            endpoint=server.endpoint,
            max_record_size_bytes=64,
            on_error="quarantine",
            quarantine_path=quarantine,
        )
        assert isinstance(result, TransmissionResult) and result.failed_count == 2
        assert pl.read_ipc(quarantine).equals(failed)
        assert sorted(server.read_table(TABLE).column("id").to_pylist()) == [1, 1, 3, 3]

        nothing_failed = pl.LazyFrame({"id": [9]}).sink_zerobus(
            TABLE, endpoint=server.endpoint, on_error="return"
        )
        assert nothing_failed.height == 0


def test_bad_arguments_name_themselves():
    with pytest.raises(TypeError, match="^endpoint: required"):
        pl.LazyFrame({"id": [1]}).sink_zerobus(TABLE)
    with pytest.raises(ValueError, match="^on_error: "):
        pl.LazyFrame({"id": [1]}).sink_zerobus(TABLE, endpoint="http://127.0.0.1:9", on_error="skip")
    with pytest.raises(ValueError, match="^quarantine_path: required"):
        pl.LazyFrame({"id": [1]}).sink_zerobus(
            TABLE, endpoint="http://127.0.0.1:9", on_error="quarantine"
        )
    from arrow_zerobus_sdk_wrapper.polars import sink_zerobus

    with pytest.raises(TypeError, match="^lf: expected a polars.LazyFrame"):
        sink_zerobus(pa.table({"id": [1]}), TABLE, endpoint="http://127.0.0.1:9")  # type: ignore[arg-type]
