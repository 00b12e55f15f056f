"""Stream a Polars LazyFrame into a Zerobus table in bounded memory, and keep the rows
that could not land."""

from __future__ import annotations

import polars as pl

import arrow_zerobus_sdk_wrapper  # noqa: F401  (adds LazyFrame.sink_zerobus)
from arrow_zerobus_sdk_wrapper.polars import sink_zerobus
from arrow_zerobus_sdk_wrapper.testing import LocalZerobus


def main(endpoint: str) -> pl.DataFrame:
    events = (
        pl.LazyFrame({"id": range(100_000)})
        .with_columns(kind=pl.when(pl.col("id") % 3 == 0).then(pl.lit("click")).otherwise(pl.lit("view")))
        .with_columns(note=pl.when(pl.col("id") == 42).then(pl.lit("x" * 500)).otherwise(None))
    )
    failed = sink_zerobus(
        events,
        "main.demo.events",
        endpoint=endpoint,
        max_record_size_bytes=256,  # row 42 is too large on purpose
        on_error="return",
    )
    assert isinstance(failed, pl.DataFrame)
    print(f"{failed.height} row(s) did not land:")
    print(failed.select("id", "_zerobus_error"))
    return failed


if __name__ == "__main__":
    with LocalZerobus() as server:
        failed = main(server.endpoint)
        assert failed["id"].to_list() == [42]
        assert server.read_table("main.demo.events").num_rows == 99_999
