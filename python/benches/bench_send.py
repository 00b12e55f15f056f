"""Rows per second from Python into Zerobus, every contender against the same local server
(landing `none`, in a process of its own), each contender in a process of its own (so its
peak RSS is its alone), on the 12-column mixed data of `benches/` (`zerobus_test_support::
data::mixed_batch`'s columns, generated here with Polars and saved as Parquet once).

    python python/benches/bench_send.py [--rows 1000000,10000000] [--contenders a,b_pb,...]
                                        [--repeat N]

Contenders (Arrow Flight ones without IPC compression unless named `_zstd`: the official
Python SDK's default, which (d) uses; the wrapper's default is ZSTD, like the Rust SDK's):
  a         Polars: pl.scan_parquet(path).sink_zerobus(...)  (streaming, bounded memory),
            protobuf; a_flight on Arrow Flight
  b         ZerobusWrapper.send(pyarrow Table)  on protobuf (b_pb), Arrow Flight
            (b_flight) and Arrow Flight with ZSTD (b_flight_zstd)
  c  the official Python SDK (databricks-zerobus-ingest-sdk) as its README shows: dict
     records, JSON, ingest_records_offset + flush  (1M rows only: it is slow)
  d  the official Python SDK's Arrow stream: create_arrow_stream + ingest_batch(pyarrow
     batch) + flush (it serializes each batch to IPC bytes in Python)
  e  the Rust wrapper on the same batches: `examples/send_parquet.rs` (release build),
     protobuf; e_flight on Arrow Flight

With --repeat N every contender runs N times, the rounds interleaved (so a busy spell on
the machine hits every contender alike), and the median rows/s is printed.

Needs the package built in release mode (`pip install ./python`), polars, and for c and d
`pip install databricks-zerobus-ingest-sdk`. Prints one table; figures go to
docs/performance.md.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "target" / "bench-data"
TABLE = "bench.python.mixed"
BATCH_ROWS = 65_536
ALPHABET = "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyz"


def mixed_parquet(rows: int) -> Path:
    """The 12 flat columns of the encoder bench's `mixed` batch, ~10 % nulls in half."""
    import polars as pl

    path = DATA / f"mixed-{rows}.parquet"
    if path.exists():
        return path
    DATA.mkdir(parents=True, exist_ok=True)
    i = pl.int_range(rows, dtype=pl.UInt64)

    def h(seed: int) -> pl.Expr:
        return i.hash(seed)

    def nulls(seed: int, expr: pl.Expr) -> pl.Expr:
        return pl.when(h(seed) % 10 == 0).then(None).otherwise(expr)

    text = pl.lit(ALPHABET).str.slice((h(5) % 20).cast(pl.Int64), (5 + h(6) % 26).cast(pl.Int64))
    frame = pl.select(
        small=(h(1) % 65_536).cast(pl.Int32).sub(32_768).cast(pl.Int16),
        count=nulls(2, (h(3) % 100_001).cast(pl.Int32)),
        id=(h(4) // 2).cast(pl.Int64),
        ratio=nulls(7, (h(8) % 1_000_000).cast(pl.Float32) / 1e3),
        amount=(h(9) % 10_000_000).cast(pl.Float64) / 1e2,
        flag=nulls(10, h(11) % 2 == 0),
        name=text,
        city=nulls(12, text.str.reverse()),
        at=(1_700_000_000_000_000 + (h(13) % (1 << 40)).cast(pl.Int64)).cast(
            pl.Datetime("us", "UTC")
        ),
        day=nulls(14, (18_000 + h(15) % 3_000).cast(pl.Int32).cast(pl.Date)),
        blob=pl.concat_str(text, text.str.reverse()).cast(pl.Binary),
        other=nulls(16, (h(17) % (1 << 20)).cast(pl.Int64)),
    )
    frame.write_parquet(path, row_group_size=BATCH_ROWS)
    return path


def start_server() -> tuple[subprocess.Popen[str], str, str]:
    """The local server (landing none, no auth) in a Python process of its own."""
    code = (
        "import sys, time\n"
        "from arrow_zerobus_sdk_wrapper.testing import LocalZerobus\n"
        "s = LocalZerobus(landing='none').start()\n"
        "print(s.endpoint, s.unity_catalog_url, flush=True)\n"
        "sys.stdin.read()\n"
    )
    server = subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert server.stdout is not None
    endpoint, uc_url = server.stdout.readline().split()
    return server, endpoint, uc_url


# The wrapper's options of each contender that uses it.
OPTIONS: dict[str, dict[str, str]] = {
    "a": {},
    "a_flight": {"transport": "arrow_flight", "flight_ipc_compression": "none"},
    "b_pb": {"transport": "protobuf"},
    "b_flight": {"transport": "arrow_flight", "flight_ipc_compression": "none"},
    "b_flight_zstd": {"transport": "arrow_flight", "flight_ipc_compression": "zstd"},
    "e": {},
    "e_flight": {"transport": "arrow_flight", "flight_ipc_compression": "none"},
}


def run_child(contender: str, rows: int, endpoint: str, uc_url: str) -> dict[str, float]:
    if contender.startswith("e"):
        exe = ROOT / "target" / "release" / "examples" / "send_parquet"
        env = dict(os.environ)
        for option, value in OPTIONS[contender].items():
            env[f"ZEROBUS_{option.upper()}"] = value
        out = subprocess.run(
            [str(exe), str(mixed_parquet(rows)), endpoint, f"{TABLE}_{contender}"],
            check=True, capture_output=True, text=True, env=env,
        ).stdout
    else:
        out = subprocess.run(
            [sys.executable, __file__, "--child", contender, "--rows", str(rows),
             "--endpoint", endpoint, "--uc", uc_url],
            check=True, capture_output=True, text=True,
        ).stdout
    return json.loads(out.strip().splitlines()[-1])


def child(contender: str, rows: int, endpoint: str, uc_url: str) -> None:
    import pyarrow.parquet as pq

    path = mixed_parquet(rows)
    table_name = f"{TABLE}_{contender}"
    if contender.startswith("a"):
        import polars as pl

        import arrow_zerobus_sdk_wrapper  # noqa: F401

        started = time.perf_counter()
        result = pl.scan_parquet(path).sink_zerobus(
            table_name, endpoint=endpoint, chunk_size=BATCH_ROWS, **OPTIONS[contender]
        )
        landed = result.successful_count
    else:
        table = pq.read_table(path)
        started = time.perf_counter()
        if contender.startswith("b"):
            from arrow_zerobus_sdk_wrapper import ZerobusWrapper

            with ZerobusWrapper(endpoint, table_name, **OPTIONS[contender]) as wrapper:
                landed = wrapper.send_sync(table.to_reader(BATCH_ROWS)).successful_count
        elif contender == "c":
            landed = official_json(table, table_name, endpoint, uc_url)
        elif contender == "d":
            landed = official_arrow(table, table_name, endpoint, uc_url)
        else:
            raise SystemExit(f"unknown contender {contender}")
    seconds = time.perf_counter() - started
    assert landed == rows, (landed, rows)
    peak = peak_rss_mib()
    print(json.dumps({"seconds": seconds, "rows_per_s": rows / seconds, "peak_rss_mib": peak}))


def peak_rss_mib() -> float:
    """This process's peak RSS (VmHWM): ``ru_maxrss`` would count the parent's peak from
    before ``exec`` (Linux keeps it), e.g. the 10M-row file's generation."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


def official_json(table, table_name: str, endpoint: str, uc_url: str) -> int:
    """The official SDK's README way: a dict per row, JSON, batches of 1,000 records."""
    from zerobus.sdk.sync import TableProperties, ZerobusSdk

    sdk = ZerobusSdk(endpoint, uc_url)
    stream = sdk.create_stream("bench", "bench", TableProperties(table_name))
    sent = 0
    for batch in table.to_batches(BATCH_ROWS):
        records = [json.dumps(row, default=str) for row in batch.to_pylist()]
        for start in range(0, len(records), 1_000):
            stream.ingest_records_offset(records[start : start + 1_000])
        sent += batch.num_rows
    stream.flush()
    stream.close()
    return sent


def official_arrow(table, table_name: str, endpoint: str, uc_url: str) -> int:
    """The official SDK's Arrow stream: ingest_batch(pyarrow batch), then flush."""
    from zerobus.sdk.sync import ZerobusSdk

    sdk = ZerobusSdk(endpoint, uc_url)
    batches = table.to_batches(BATCH_ROWS)
    stream = sdk.create_arrow_stream(table_name, batches[0].schema, "bench", "bench")
    for batch in batches:
        stream.ingest_batch(batch)
    stream.flush()
    stream.close()
    return table.num_rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", default="1000000,10000000")
    parser.add_argument(
        "--contenders", default="a,a_flight,b_pb,b_flight,b_flight_zstd,c,d,e,e_flight"
    )
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--child")
    parser.add_argument("--endpoint")
    parser.add_argument("--uc", default="")
    args = parser.parse_args()
    if args.child:
        child(args.child, int(args.rows), args.endpoint, args.uc)
        return
    sizes = [int(r) for r in args.rows.split(",")]
    contenders = args.contenders.split(",")
    for rows in sizes:
        mixed_parquet(rows)
    server, endpoint, uc_url = start_server()
    try:
        print(f"{'contender':14} {'rows':>10} {'seconds':>8} {'rows/s':>12} {'peak RSS MiB':>13}")
        for rows in sizes:
            runs: dict[str, list[dict[str, float]]] = {c: [] for c in contenders}
            for _ in range(args.repeat):
                for contender in contenders:
                    if contender == "c" and rows > 1_000_000:
                        continue
                    runs[contender].append(run_child(contender, rows, endpoint, uc_url))
            for contender, figures in runs.items():
                if not figures:
                    continue
                median = statistics.median(f["rows_per_s"] for f in figures)
                print(
                    f"{contender:14} {rows:>10} {rows / median:>8.2f} {median:>12,.0f} "
                    f"{max(f.get('peak_rss_mib', 0.0) for f in figures):>13.0f}",
                    flush=True,
                )
    finally:
        assert server.stdin is not None
        server.stdin.close()
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
