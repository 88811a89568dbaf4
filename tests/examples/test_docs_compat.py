"""Every ```python block of docs/coming-from-2.1.md runs, in order, in one namespace."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path
from typing import Any

import pytest

PAGE = Path(__file__).resolve().parents[2] / "docs" / "coming-from-2.1.md"
FENCE = re.compile(r"^```python\n(.*?)^```$", re.MULTILINE | re.DOTALL)


def test_page_runs_top_to_bottom(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from registers.db import dispose_all

    monkeypatch.chdir(tmp_path)
    blocks = FENCE.findall(PAGE.read_text(encoding="utf-8"))
    assert len(blocks) >= 2
    namespace: dict[str, Any] = {"__name__": "docs_compat"}
    try:
        for index, block in enumerate(blocks):
            code = compile(textwrap.dedent(block), f"{PAGE.name} block {index}", "exec",
                           dont_inherit=True)
            exec(code, namespace)
    finally:
        dispose_all()
