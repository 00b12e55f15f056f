"""The debug files are readable outside Rust: pyarrow reads the Arrow IPC stream, and
google.protobuf decodes the length-delimited records with the descriptor set written
beside them. Runs the `writer_disabled` example (the README's main job) to produce them."""

import pyarrow as pa
import pytest
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.internal.decoder import _DecodeVarint

from conftest import cargo

TABLE = "main.demo.events"


@pytest.fixture(scope="module")
def output_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("debug")
    cargo("run", "--example", "writer_disabled", "--", str(out))
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
