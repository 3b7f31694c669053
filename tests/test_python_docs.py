"""Every ```python block of docs/python.md runs (blocks marked `no-run` must at least parse), so the page
cannot drift from the API."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[1] / "docs" / "python.md"
BLOCK = re.compile(r"^```python( no-run)?\n(.*?)^```", re.S | re.M)


def blocks() -> list[tuple[str, bool]]:
    return [(m.group(2), bool(m.group(1))) for m in BLOCK.finditer(DOC.read_text())]


def test_the_page_has_examples():
    found = blocks()
    assert len([b for b, skip in found if not skip]) >= 7
    assert any(skip for _, skip in found)


@pytest.mark.parametrize("index", range(len(blocks())))
def test_block_runs(index, capsys):
    code, skip = blocks()[index]
    tree = ast.parse(code)  # every block is valid Python
    if skip:
        pytest.skip("needs data or a GPU: parsed only")
    exec(compile(tree, f"docs/python.md block {index}", "exec"), {"__name__": "__docs__"})
    for path in re.findall(r'\.save\("([^"]+)"\)', code):  # what the page says it writes, it writes
        assert Path(path).stat().st_size > 100
