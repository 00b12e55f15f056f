"""Installs the Python package from the source tree into the running interpreter's
environment (a virtualenv), with the extension module that `cargo build` made for the
tests: what `maturin develop` does, without a second build of the Rust crates.

    target/py-venv/bin/python scripts/python-dev-install.py [debug|release]

The package directory stays `python/arrow_zerobus_sdk_wrapper` (a `.pth` file points at
it), the compiled module is copied beside it, and a minimal dist-info registers the pytest
plugin's entry point. `pip install ./python` is the way for users.
"""

from __future__ import annotations

import shutil
import sys
import sysconfig
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "python" / "arrow_zerobus_sdk_wrapper"


def main(profile: str) -> None:
    library = "lib_internal.dylib" if sys.platform == "darwin" else "lib_internal.so"
    built = ROOT / "target" / profile / library
    if not built.exists():
        sys.exit(f"{built} is missing: build the workspace first (scripts/test.sh does)")
    shutil.copy2(built, PACKAGE / "_internal.abi3.so")

    project = tomllib.loads((ROOT / "python" / "pyproject.toml").read_text())["project"]
    site = Path(sysconfig.get_paths()["purelib"])
    (site / "arrow_zerobus_sdk_wrapper.pth").write_text(f"{PACKAGE.parent}\n")
    dist = site / f"arrow_zerobus_sdk_wrapper-{project['version']}.dist-info"
    dist.mkdir(exist_ok=True)
    (dist / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {project['name']}\nVersion: {project['version']}\n"
    )
    entry_points = project.get("entry-points", {})
    lines = [
        f"[{group}]\n" + "".join(f"{name} = {target}\n" for name, target in points.items())
        for group, points in entry_points.items()
    ]
    (dist / "entry_points.txt").write_text("\n".join(lines))
    (dist / "INSTALLER").write_text("scripts/python-dev-install.py\n")
    (dist / "RECORD").write_text("")
    print(f"arrow_zerobus_sdk_wrapper {project['version']} ({profile} build) -> {site}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "debug")
