#!/usr/bin/env python3
"""`zerobus ingest` of a Parquet file against the wrapper driven directly on it.

Builds the release binaries (in $CARGO_TARGET_DIR, else target/), writes Parquet files of
1M and 10M rows (id BIGINT, name STRING, score DOUBLE) with `zerobus sql`, starts
`zerobus local serve --landing none`, and for each file runs, alternating, `--repeat`
times each (best run kept):

- the baseline, `examples/send_parquet.rs`: the file read into memory first, then
  `ZerobusWrapper::send_stream` over its 65,536-row batches (4 in flight); it times the
  send alone, after the read and the connection;
- `zerobus ingest FILE` (65,536-row batches, 4 in flight): its own clock runs from the
  start of the command to the end of the shutdown, so it includes what the baseline
  leaves out (decoding the Parquet file while sending, connecting, flushing).

Two comparisons, both printed: "own clocks" (the baseline's send-only time against the
CLI's whole run: the strict one, the target) and "wall" (each process from exec to exit,
both reading the file, connecting and shutting down). Peak RSS is each process's VmHWM,
sampled from /proc while it runs (ru_maxrss would start from this script's own peak:
Linux keeps it across exec). Last, the RSS ratio of `zerobus ingest` at the largest size
to the smallest.

The `zerobus` binary uses mimalloc; the baseline the system allocator, as a program linking
the wrapper does unless it chooses otherwise. `--baseline-preload LIB` also runs the
baseline with `LD_PRELOAD=LIB` (a mimalloc shared library of the version the binary
links), so that the two can be compared on one allocator too. Usage, from the repository
root:

    python3 crates/zerobus-cli/benches/ingest.py [--repeat N] [--no-build]
        [--baseline-preload LIB] [ROWS ...]
    # default: 1000000 10000000, --repeat 3
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
TARGET = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
RELEASE = os.path.join(os.path.abspath(TARGET), "release")
PORT, HTTP_PORT = 50071, 50072


def vm_hwm_mib(pid):
    """VmHWM of process `pid` in MiB, or None once it is gone."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def run(command, env=None):
    """Runs `command` (with `env` added to the environment): its stdout, wall seconds and
    peak RSS in MiB (VmHWM, sampled every 20 ms; the high-water mark only grows, so the
    last sample holds the peak up to 20 ms before the exit)."""
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, cwd=ROOT,
                               env={**os.environ, **(env or {})})
    peak = [0.0]

    def sample():
        while process.poll() is None:
            value = vm_hwm_mib(process.pid)
            if value is not None:
                peak[0] = max(peak[0], value)
            time.sleep(0.02)

    sampler = threading.Thread(target=sample)
    sampler.start()
    out = process.stdout.read()
    process.wait()
    wall = time.perf_counter() - started
    sampler.join()
    if process.returncode != 0:
        sys.exit(f"{command[0]} failed ({process.returncode}):\n{out.decode()}")
    return out.decode(), wall, peak[0]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("rows", nargs="*", type=int, default=[1_000_000, 10_000_000])
    parser.add_argument("--repeat", type=int, default=3, help="runs of each contender")
    parser.add_argument("--no-build", action="store_true", help="use the binaries as built")
    parser.add_argument("--baseline-preload", metavar="LIB",
                        help="also run the baseline with LD_PRELOAD=LIB (e.g. a malloc "
                             "replacement, to compare both on the same allocator)")
    args = parser.parse_args()
    if not args.no_build:
        subprocess.run(
            ["cargo", "build", "--release", "--features", "datafusion",
             "-p", "zerobus-cli", "-p", "arrow-zerobus-sdk-wrapper",
             "--bin", "zerobus", "--example", "send_parquet"],
            cwd=ROOT, check=True)
    zerobus = os.path.join(RELEASE, "zerobus")
    send_parquet = os.path.join(RELEASE, "examples", "send_parquet")
    server = subprocess.Popen(
        [zerobus, "local", "serve", "--landing", "none", "--no-auth",
         "--port", str(PORT), "--http-port", str(HTTP_PORT)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{PORT}"
    time.sleep(2)
    if server.poll() is not None:
        sys.exit(f"zerobus local serve exited ({server.returncode}): port {PORT} taken?")
    print(f"load average before: {os.getloadavg()[0]:.2f}", flush=True)
    rss = {}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for rows in args.rows:
                path = os.path.join(tmp, f"events_{rows}.parquet")
                run([zerobus, "sql", "-c",
                     f"COPY (SELECT value AS id, CAST(value AS VARCHAR) AS name, "
                     f"value * 0.5 AS score FROM range({rows})) TO '{path}' STORED AS PARQUET"])
                def baseline(name, attempt, env=None):
                    """One send_parquet run: (own-clock rows/s, wall rows/s, peak RSS)."""
                    out, wall, peak = run([send_parquet, path, endpoint,
                                           f"bench.cli.{name}_{rows}_{attempt}"], env=env)
                    return json.loads(out)["rows_per_s"], rows / wall, peak

                direct, cli, preloaded = [], [], []
                for attempt in range(args.repeat):
                    direct.append(baseline("direct", attempt))
                    if args.baseline_preload:
                        preloaded.append(baseline("preloaded", attempt,
                                                  {"LD_PRELOAD": args.baseline_preload}))
                        print(f"  {rows:,} run {attempt + 1}: wrapper with "
                              f"{os.path.basename(args.baseline_preload)} "
                              f"{preloaded[-1][0]:,.0f} rows/s (wall {preloaded[-1][1]:,.0f}), "
                              f"RSS {preloaded[-1][2]:.0f} MiB", flush=True)
                    out, wall, peak = run([zerobus, "ingest", path,
                                           "--table", f"bench.cli.cli_{rows}_{attempt}",
                                           "--endpoint", endpoint, "--json", "--quiet"])
                    summary = json.loads(out)
                    assert summary["rows_acknowledged"] == rows, summary
                    cli.append((summary["rows_per_second"], rows / wall, peak))
                    print(f"  {rows:,} run {attempt + 1}: wrapper {direct[-1][0]:,.0f} rows/s "
                          f"(wall {direct[-1][1]:,.0f}), zerobus ingest {cli[-1][0]:,.0f} "
                          f"(wall {cli[-1][1]:,.0f}), RSS {direct[-1][2]:.0f} / "
                          f"{cli[-1][2]:.0f} MiB", flush=True)
                best_direct = max(d[0] for d in direct)
                best_direct_wall = max(d[1] for d in direct)
                best_cli = max(c[0] for c in cli)
                best_cli_wall = max(c[1] for c in cli)
                peak = max(c[2] for c in cli)
                rss[rows] = peak
                print(f"{rows:>11,} rows, best of {args.repeat}: own clocks: wrapper "
                      f"{best_direct:,.0f} rows/s, zerobus ingest {best_cli:,.0f} rows/s, "
                      f"ratio {best_cli / best_direct:.2f}; wall: {best_direct_wall:,.0f} vs "
                      f"{best_cli_wall:,.0f}, ratio {best_cli_wall / best_direct_wall:.2f}; "
                      f"peak RSS wrapper {max(d[2] for d in direct):.0f} MiB, "
                      f"zerobus ingest {peak:.0f} MiB", flush=True)
                if preloaded:
                    best = max(p[0] for p in preloaded)
                    best_wall = max(p[1] for p in preloaded)
                    print(f"{rows:>11,} rows, against the baseline with "
                          f"{os.path.basename(args.baseline_preload)}: {best:,.0f} rows/s, "
                          f"ratio {best_cli / best:.2f}; wall ratio "
                          f"{best_cli_wall / best_wall:.2f}; its peak RSS "
                          f"{max(p[2] for p in preloaded):.0f} MiB", flush=True)
    finally:
        server.terminate()
        server.wait()
    if len(rss) > 1:
        small, large = min(rss), max(rss)
        print(f"zerobus ingest peak RSS {large:,} / {small:,} rows: "
              f"{rss[large] / rss[small]:.2f}")
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
