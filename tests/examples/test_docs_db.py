"""Every ```python snippet of docs/db.md runs, top to bottom, in one namespace.

The snippets are executed in order in an empty working directory, as a reader following
the page would; a failure names the snippet's line in the page and the heading above it.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

PAGE = Path(__file__).resolve().parents[2] / "docs" / "db.md"
FENCE = re.compile(r"^```python\n(.*?)^```$", re.MULTILINE | re.DOTALL)


@dataclass(frozen=True)
class Snippet:
    line: int
    heading: str
    code: str

    def __str__(self) -> str:
        return f"{PAGE.name}:{self.line} (under {self.heading!r})"


def snippets(text: str) -> list[Snippet]:
    found = []
    for match in FENCE.finditer(text):
        line = text.count("\n", 0, match.start()) + 1
        headings = re.findall(r"^#+ (.+)$", text[: match.start()], re.MULTILINE)
        found.append(Snippet(line, headings[-1] if headings else "", match.group(1)))
    return found


@pytest.fixture
def page_namespace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, Any] = {"__name__": "docs_db"}
    try:
        yield namespace
    finally:
        _release(namespace)


def _release(namespace: dict[str, Any]) -> None:
    """Close the page's databases: their relative paths must not outlive the temp dir."""
    from registers.db import DatabaseRegistry

    seen = set()
    for value in namespace.values():
        manager = getattr(value, "objects", value)
        if isinstance(manager, DatabaseRegistry) and id(manager.database) not in seen:
            seen.add(id(manager.database))
            manager.dispose()


def test_page_has_snippets_for_every_section() -> None:
    text = PAGE.read_text(encoding="utf-8")
    covered = {snippet.heading for snippet in snippets(text)}
    for heading in ("Declaring models", "Column types", "Writing", "Reading", "Lookups",
                    "Transactions", "Atomic updates with F", "upsert changes only what you give",
                    "get_or_create and update_or_create", "bulk_update", "in_bulk and raw",
                    "Passwords", "Schema helpers",
                    "Alembic", "Relationships", "Q objects and exclude",
                    "Query: lazy and chainable", "Across relationships", "Into JSON fields",
                    "More lookups", "Compiled once per shape", "Aggregates and grouping",
                    "Grouping: values().annotate()", "Errors"):
        assert heading in covered, f"no runnable snippet under {heading!r}"


def test_every_snippet_compiles() -> None:
    for snippet in snippets(PAGE.read_text(encoding="utf-8")):
        compile(textwrap.dedent(snippet.code), str(snippet), "exec", dont_inherit=True)


def test_snippets_run_in_order(page_namespace: dict[str, Any]) -> None:
    for snippet in snippets(PAGE.read_text(encoding="utf-8")):
        # dont_inherit: this module's `from __future__ import annotations` must not leak
        # into the snippets (pydantic would then see string annotations).
        code = compile(snippet.code, str(snippet), "exec", dont_inherit=True)
        try:
            exec(code, page_namespace)
        except Exception as exc:
            pytest.fail(f"snippet at {snippet} failed: {type(exc).__name__}: {exc}")
