"""docs/migrations.md, run as a reader would: every file written, every command run, in order.

Blocks of the page, top to bottom, in a fresh project folder (SQLite, as on the page):

* ``<!-- file: PATH -->`` then a fenced block: the block becomes that file;
* a ```bash block: each line is a command (``pip ...`` lines are skipped); a comment saying
  ``exits 1`` means that status is expected, anything else must exit 0;
* ``<!-- rename: FILE OLD NEW -->`` then a ```diff block: the field OLD becomes NEW in FILE,
  ``registers db revision -m "rename OLD"`` runs, and the diff is applied to the new script's
  ``upgrade()`` (and reversed in ``downgrade()``); each ``-`` line must be in the script;
* ``<!-- run: python -->`` then a ```python block: run with the project's Python.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from ._project import Project

pytestmark = pytest.mark.slow

PAGE = Path(__file__).resolve().parents[2] / "docs" / "migrations.md"
BLOCK = re.compile(r"(?:^<!-- (?P<marker>[^>]*) -->\n)?^```(?P<lang>\w*)\n(?P<body>.*?)^```$",
                   re.MULTILINE | re.DOTALL)


def _blocks() -> list[tuple[str, str, str, int]]:
    text = PAGE.read_text(encoding="utf-8")
    return [(m["marker"] or "", m["lang"], m["body"], text.count("\n", 0, m.start()) + 1)
            for m in BLOCK.finditer(text)]


def test_page_exists_and_has_each_kind_of_block() -> None:
    kinds = {(marker.split(":")[0], lang) for marker, lang, _, _ in _blocks()}
    assert {("file", "python"), ("", "bash"), ("rename", "diff"), ("run", "python")} <= kinds


def _apply_rename(script: Path, diff: str, old: str, new: str) -> None:
    text = script.read_text(encoding="utf-8")
    upgrade, downgrade = text.split("def downgrade")
    removed = [line[1:] for line in diff.splitlines() if line.startswith("-")]
    added = [line[1:] for line in diff.splitlines() if line.startswith("+")]
    assert len(added) == 1, "the documented rename is a one-line edit"

    def edit(part: str, removed: list[str], added: str) -> str:
        lines = part.split("\n")
        for line in removed:
            assert line in lines, f"the page's line is not in the generated script:\n{line}\n{part}"
        at = lines.index(removed[0])
        lines = [x for x in lines if x not in removed]
        lines.insert(at, added)
        return "\n".join(lines)

    def swap(line: str) -> str:
        return line.replace(f"'{old}'", "\0").replace(f"'{new}'", f"'{old}'").replace(
            "\0", f"'{new}'")

    upgrade = edit(upgrade, removed, added[0])
    # downgrade(): the same edit the other way round.
    downgrade = edit(downgrade, [_column_line(downgrade, old), swap(removed[1])], swap(added[0]))
    script.write_text(upgrade + "def downgrade" + downgrade, encoding="utf-8")


def _column_line(part: str, name: str) -> str:
    for line in part.split("\n"):
        if f".add_column(sa.Column('{name}'" in line:
            return line
    raise AssertionError(f"no add_column line for {name!r} in:\n{part}")


def test_every_command_of_the_page_runs_in_order(tmp_path: Path) -> None:
    project = Project(tmp_path / "proj", "sqlite:///app.db")
    ran = 0
    for marker, lang, body, line in _blocks():
        where = f"{PAGE.name}:{line}"
        if marker.startswith("file:"):
            path = project.root / marker.split(":", 1)[1].strip()
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(body, encoding="utf-8")
        elif lang == "bash":
            for command in body.splitlines():
                code, _, comment = command.partition("#")
                if not code.strip() or code.startswith("pip "):
                    continue
                args = shlex.split(code)
                assert args[0] == "registers", where
                expect = 1 if "exits 1" in comment else 0
                project.run(*args[1:], expect=expect)
                ran += 1
        elif marker.startswith("rename:"):
            _, file, old, new = marker.split()
            models = project.root / file
            models.write_text(re.sub(rf"\b{old}\b", new, models.read_text()), encoding="utf-8")
            project.run("db", "revision", "-m", f"rename {old}")
            _apply_rename(project.scripts()[-1], body, old, new)
        elif marker.startswith("run:"):
            done = subprocess.run([sys.executable, "-c", body], cwd=project.root,
                                  capture_output=True, text=True, env=project.env(), timeout=300)
            assert done.returncode == 0, (where, done.stdout, done.stderr)
            assert "migrated: []" in done.stdout, done.stdout
    assert ran >= 12
    # The page's end state: renamed, back-filled, in step with the models.
    columns = project.columns("books")
    assert "heading" in columns and "title" not in columns and "unit" in columns
    project.run("db", "check")
