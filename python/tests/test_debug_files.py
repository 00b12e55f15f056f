"""The debug files are readable outside Rust: pyarrow reads the Arrow IPC stream, and
google.protobuf decodes the length-delimited records with the descriptor set written
beside them. The files are written through the bindings in writer-disabled mode (the
same batch as the `writer_disabled` example)."""

import pyarrow as pa
import pytest
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.internal.decoder import _DecodeVarint

from arrow_zerobus_sdk_wrapper import ConversionError, ZerobusWrapper

TABLE = "main.demo.events"


def sample_batch() -> pa.RecordBatch:
    return pa.record_batch(
        {
            "id": pa.array([1, 2, 3, 4], pa.int64()),
            "name": ["Alice", "Bob", None, "Dave"],
            "score": [91.5, 78.0, 88.25, 64.0],
            "active": [True, False, True, True],
            "seen_at": pa.array([1_700_000_000_000_000] * 4, pa.timestamp("us", tz="UTC")),
            # Row 2 holds a value BIGINT cannot represent: it fails alone, with its reason.
            "counter": pa.array([10, 20, 2**64 - 1, 40], pa.uint64()),
            "tags": pa.array([[1, 2], [], None, [7]], pa.list_(pa.int32())),
        }
    )


@pytest.fixture(scope="module")
def output_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("debug")
    with ZerobusWrapper(
        "https://workspace.cloud.databricks.com",
        TABLE,
        zerobus_writer_disabled=True,
        debug_enabled=True,
        debug_output_dir=str(out),
    ) as wrapper:
        result = wrapper.send_batch_sync(sample_batch())
    assert result.get_failed_row_indices() == [2]
    (row, error), = result.failed_rows
    assert isinstance(error, ConversionError) and error.column == "counter" and error.row == 2
    return out / "zerobus"


def test_pyarrow_reads_the_arrow_stream(output_dir):
    table = pa.ipc.open_stream(output_dir / "arrow" / f"{TABLE}.arrows").read_all()
    assert table.num_rows == 4
    assert table.column("id").to_pylist() == [1, 2, 3, 4]
    assert table.column("name").to_pylist() == ["Alice", "Bob", None, "Dave"]
    assert table.column("tags").to_pylist() == [[1, 2], [], None, [7]]
    assert table.schema.field("seen_at").type == pa.timestamp("us", tz="UTC")


def test_protobuf_records_decode_with_their_descriptor(output_dir):
    proto_dir = output_dir / "proto"
    fds = descriptor_pb2.FileDescriptorSet.FromString((proto_dir / f"{TABLE}.desc").read_bytes())
    pool = descriptor_pool.DescriptorPool()
    for file in fds.file:
        pool.Add(file)
    Row = message_factory.GetMessageClass(pool.FindMessageTypeByName("events"))

    data, pos, rows = (proto_dir / f"{TABLE}.pb").read_bytes(), 0, []
    while pos < len(data):
        size, pos = _DecodeVarint(data, pos)
        rows.append(Row.FromString(data[pos : pos + size]))
        pos += size

    # Row 2 (id 3) failed: its UInt64 counter does not fit BIGINT, so it is not in the file.
    assert [r.id for r in rows] == [1, 2, 4]
    assert [r.name for r in rows] == ["Alice", "Bob", "Dave"]
    assert [list(r.tags) for r in rows] == [[1, 2], [], [7]]
    assert [r.counter for r in rows] == [10, 20, 40]
    assert all(r.seen_at == 1_700_000_000_000_000 for r in rows)
    assert [r.score for r in rows] == [91.5, 78.0, 64.0]
    assert [r.active for r in rows] == [True, False, True]
