"""The original wrapper's quick start, against the bundled local server: send a pyarrow
batch with `await`, then read what became of every row."""

from __future__ import annotations

import asyncio

import pyarrow as pa

from arrow_zerobus_sdk_wrapper import ZerobusWrapper
from arrow_zerobus_sdk_wrapper.testing import LocalZerobus


async def main(endpoint: str) -> int:
    # Against Databricks: ZerobusWrapper(endpoint, table_name, client_id=...,
    # client_secret=..., unity_catalog_url=...).
    async with ZerobusWrapper(endpoint, "main.demo.users") as wrapper:
        batch = pa.RecordBatch.from_arrays(
            [pa.array([1, 2, 3], type=pa.int64()), pa.array(["Alice", "Bob", "Charlie"])],
            names=["id", "name"],
        )
        result = await wrapper.send_batch(batch)
        if result.success:
            print(f"batch sent: {result.successful_count} rows")
        if result.is_partial_success():
            failed = result.extract_failed_batch(batch)
            print(f"quarantine {failed.num_rows if failed else 0} rows")
            for error_type, rows in result.group_errors_by_type().items():
                print(f"  {error_type}: {len(rows)} rows")
        return result.successful_count


if __name__ == "__main__":
    with LocalZerobus() as server:
        sent = asyncio.run(main(server.endpoint))
        assert server.read_table("main.demo.users").num_rows == sent == 3
