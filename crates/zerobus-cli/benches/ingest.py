#!/usr/bin/env python3
"""`zerobus ingest` of a Parquet file against the wrapper driven directly on it.

Builds the release binaries, writes Parquet files of 1M and 10M rows (id BIGINT, name
STRING, score DOUBLE) with `zerobus sql`, starts `zerobus-local --landing none`, and for
each file runs in turn

- the baseline, `examples/send_parquet.rs`: the file read into memory first, then
  `ZerobusWrapper::send_stream` over its 65,536-row batches (only the send is timed);
- `zerobus ingest FILE` (its own clock: reading, encoding and sending, 65,536-row
  batches);

and prints rows/s of both, their ratio and the peak RSS of `zerobus ingest` (from
wait4), then the RSS ratio 10M / 1M. Usage, from the repository root:

    python3 crates/zerobus-cli/benches/ingest.py [ROWS ...]   # default: 1000000 10000000
"""

import json
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
RELEASE = os.path.join(ROOT, "target", "release")


def run(command, **kwargs):
    """Runs `command`; its stdout, and its peak RSS in MiB (wait4)."""
    process = subprocess.Popen(command, stdout=subprocess.PIPE, cwd=ROOT, **kwargs)
    out = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        sys.exit(f"{command[0]} failed ({process.returncode}):\n{out.decode()}")
    return out.decode(), usage.ru_maxrss / 1024


def main():
    sizes = [int(a) for a in sys.argv[1:]] or [1_000_000, 10_000_000]
    env = dict(os.environ, CARGO_INCREMENTAL="0")
    subprocess.run(
        ["cargo", "build", "--release", "--features", "datafusion",
         "-p", "zerobus-cli", "-p", "zerobus-local", "-p", "arrow-zerobus-sdk-wrapper",
         "--bin", "zerobus", "--bin", "zerobus-local", "--example", "send_parquet"],
        cwd=ROOT, env=env, check=True)
    zerobus = os.path.join(RELEASE, "zerobus")
    server = subprocess.Popen(
        [os.path.join(RELEASE, "zerobus-local"), "--landing", "none", "--no-auth",
         "--port", "50071", "--http-port", "50072"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    endpoint = "http://127.0.0.1:50071"
    time.sleep(1)
    rss = {}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for rows in sizes:
                path = os.path.join(tmp, f"events_{rows}.parquet")
                run([zerobus, "sql", "-c",
                     f"COPY (SELECT value AS id, CAST(value AS VARCHAR) AS name, "
                     f"value * 0.5 AS score FROM range({rows})) TO '{path}' STORED AS PARQUET"])
                out, _ = run([os.path.join(RELEASE, "examples", "send_parquet"),
                              path, endpoint, f"bench.cli.direct_{rows}"])
                direct = json.loads(out)["rows_per_s"]
                out, peak = run([zerobus, "ingest", path, "--table", f"bench.cli.cli_{rows}",
                                 "--endpoint", endpoint, "--json", "--quiet"])
                summary = json.loads(out)
                assert summary["rows_acknowledged"] == rows, summary
                cli = summary["rows_per_second"]
                rss[rows] = peak
                print(f"{rows:>11,} rows: wrapper {direct:>12,.0f} rows/s, zerobus ingest "
                      f"{cli:>12,.0f} rows/s, ratio {cli / direct:.2f}, peak RSS {peak:.0f} MiB")
    finally:
        server.terminate()
        server.wait()
    if len(rss) > 1:
        small, large = min(rss), max(rss)
        print(f"peak RSS {large:,} / {small:,} rows: {rss[large] / rss[small]:.2f}")


if __name__ == "__main__":
    main()
