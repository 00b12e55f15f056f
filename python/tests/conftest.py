"""Shared by the Python tests: the repository root, how to run cargo (the Delta interop
table is written by a Rust test of the landing), and common data.

Every cargo call uses the features and package selection of `scripts/test.sh`, so it reuses
the build the Rust tests made instead of compiling the crates again with other features.
"""

from __future__ import annotations

import pathlib
import subprocess

ROOT = pathlib.Path(__file__).resolve().parents[2]
FEATURES = ["--features", "datafusion"]


def cargo(command: str, *args: str, env: dict[str, str] | None = None) -> None:
    """Runs `cargo <command> --quiet <the shared features> <args>` at the repository root
    (`cargo test` for the whole workspace, as scripts/test.sh does)."""
    selection = ["--workspace", *FEATURES] if command == "test" else FEATURES
    subprocess.run(
        ["cargo", command, "--quiet", *selection, *args],
        cwd=ROOT,
        env=env,
        check=True,
    )
