"""The Delta tables of the local Zerobus server (`zerobus-local`, Landing::Delta) are
readable outside Rust: Polars `read_delta` and the deltalake package read the table the
server's Delta landing wrote, value by value equal to the rows it was given (an Arrow IPC
file written beside it). The table is written by an ignored Rust test of the landing."""

import os

import polars as pl
import pyarrow as pa
import pytest
from deltalake import DeltaTable

from conftest import cargo

RUST_TEST = "landing::delta::tests::write_interop_table"


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    out = tmp_path_factory.mktemp("delta")
    cargo("test", "--lib", RUST_TEST, "--", "--ignored", "--exact",
          env=dict(os.environ, ZEROBUS_DELTA_INTEROP_DIR=str(out)))
    expected = pa.ipc.open_file(out / "every_type.arrow").read_all()
    return out / "cat" / "sch" / "every_type", expected


def test_polars_read_delta_equals_the_rows_sent(written):
    table_dir, expected = written
    got = pl.read_delta(str(table_dir)).sort("id")
    want = pl.from_arrow(expected).sort("id")
    assert got.height == 90
    assert got.schema == want.schema
    assert got.equals(want, null_equal=True)


def test_deltalake_sees_one_version_per_commit_and_the_same_values(written):
    table_dir, expected = written
    table = DeltaTable(str(table_dir))
    assert table.version() == 3  # create + three commits
    got = table.to_pyarrow_table().sort_by("id")
    want = expected.sort_by("id")
    assert got.column_names == want.column_names
    for name in want.column_names:
        # Delta names list items "element" and map entries "key_value": compare values.
        assert got.column(name).to_pylist() == want.column(name).to_pylist(), name
    assert got.schema.field("ts").type == pa.timestamp("us", tz="UTC")
    assert got.schema.field("ts_ntz").type == pa.timestamp("us")
