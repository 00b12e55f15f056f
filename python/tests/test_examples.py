"""The examples in python/examples and the Python snippets of README.md and docs/python.md
run as tests."""

from __future__ import annotations

import pathlib
import re
import runpy
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "python" / "examples").glob("*.py"))


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
def test_example_runs(example):
    runpy.run_path(str(example), run_name="__main__")


def python_snippets(doc: pathlib.Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", doc.read_text(), flags=re.S)


@pytest.mark.parametrize("doc", ["README.md", "docs/python.md", "python/README.md"])
def test_doc_snippets_run(doc, tmp_path):
    snippets = python_snippets(ROOT / doc)
    assert snippets, f"{doc} has no python snippet"
    for i, snippet in enumerate(snippets):
        script = tmp_path / f"snippet_{i}.py"
        script.write_text(snippet)
        done = subprocess.run(
            [sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, f"{doc} snippet {i}:\n{snippet}\n{done.stderr}"
