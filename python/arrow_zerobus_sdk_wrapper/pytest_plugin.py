"""The pytest plugin of the package (registered through the ``pytest11`` entry point):
a ``zerobus_local`` fixture with a running :class:`~arrow_zerobus_sdk_wrapper.testing.LocalZerobus`
(memory landing, no auth), one per test.

.. code-block:: python

    def test_lands(zerobus_local):
        with ZerobusWrapper(zerobus_local.endpoint, "main.demo.t") as wrapper:
            wrapper.send_sync(pa.table({"id": [1]}))
        assert zerobus_local.read_table("main.demo.t").num_rows == 1
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .testing import LocalZerobus


@pytest.fixture
def zerobus_local() -> Iterator[LocalZerobus]:
    """A local Zerobus server for one test (memory landing, no auth)."""
    with LocalZerobus() as server:
        yield server
