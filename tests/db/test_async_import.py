"""The async machinery is imported by the first async call, not before, and off the loop.

``app --help`` of a ``cli.crud`` app with one model (on each backend) imports neither the
async machinery (registers' async modules, SQLAlchemy's asyncio layer, greenlet, the async
drivers) nor another backend's dialect or driver, nor its own backend's driver (the engine
is made on first use); ``asyncio`` only where SQLAlchemy itself imports it (2.1 does, at
``import sqlalchemy``). The async twins then work in the same process.

Off the loop: importing ``sqlalchemy.ext.asyncio`` and the async driver takes about 300 ms on
a first use in a process. Each case runs in a fresh interpreter (so nothing is imported
yet) with an import hook that, when one of those modules starts importing, asks the event
loop to run a callback and waits for it: the loop can only run it if the import is not
happening on the loop's own thread. No timing is measured; the wait's timeout is only the
failure path.
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

WATCHED = ("sqlalchemy.ext.asyncio", "aiosqlite")

SCRIPT = textwrap.dedent(
    """
    import asyncio, importlib.abc, json, sys, threading

    from registers.db import Model, database_registry

    WATCHED = {watched!r}
    already = sorted(name for name in WATCHED if name in sys.modules)
    seen = {{}}
    state = {{}}


    class Watch(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name in WATCHED and name not in seen and "loop" in state:
                ran = threading.Event()
                state["loop"].call_soon_threadsafe(ran.set)
                on_loop = threading.current_thread() is state["loop_thread"]
                seen[name] = {{"on_loop_thread": on_loop,
                              "loop_ran_meanwhile": ran.wait(timeout=20)}}
            return None


    sys.meta_path.insert(0, Watch())


    @database_registry("sqlite:///first.db", table_name="items")
    class Item(Model):
        id: int | None = None
        name: str


    async def main():
        state["loop"] = asyncio.get_running_loop()
        state["loop_thread"] = threading.current_thread()
        {first_call}
        assert await Item.objects.acount() == 1
        assert [i.name for i in await Item.objects.aall()] == ["a"]
        await Item.objects.adispose()


    asyncio.run(main())
    print(json.dumps({{"already": already, "seen": seen}}))
    """
)

FIRST_CALLS = {
    "a read (SQLite fast path)": 'assert await Item.objects.acount() == 0\n'
                                 '    await Item.objects.acreate(name="a")',
    "a write": 'await Item.objects.acreate(name="a")',
    "a transaction": 'async with Item.objects.atransaction():\n'
                     '        await Item.objects.acreate(name="a")',
    "a bulk write (engine path)": 'await Item.objects.abulk_create([{"name": "a"}])',
}


@pytest.mark.parametrize("first_call", list(FIRST_CALLS), ids=list(FIRST_CALLS))
def test_the_async_layer_is_imported_off_the_event_loop(first_call: str, tmp_path: Path) -> None:
    script = SCRIPT.format(watched=WATCHED, first_call=FIRST_CALLS[first_call])
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    # `import registers.db` alone must not have paid for the async layer...
    assert report["already"] == []
    # ...and the first async call imported it on another thread, the loop running meanwhile.
    assert report["seen"] == {
        name: {"on_loop_thread": False, "loop_ran_meanwhile": True} for name in WATCHED
    }


# --- `app --help` of a CLI with models pays for neither async nor the other backends ------

ASYNC_MACHINERY = (
    "registers.db.aio",
    "registers.db.async_engine",
    "registers.db.async_direct",
    "sqlalchemy.ext.asyncio",
    "greenlet",
    "aiosqlite",
    "asyncpg",
    "aiomysql",
    "asyncio",
)
POSTGRES_MODULES = ("sqlalchemy.dialects.postgresql", "psycopg", "asyncpg")
MYSQL_MODULES = ("sqlalchemy.dialects.mysql", "pymysql", "aiomysql")
# what `app --help` must not import, per backend of its one model
# (nor its own driver: the engine is made on first use; only its SQLAlchemy dialect,
# which quotes names)
NOT_FOR = {
    "sqlite": ASYNC_MACHINERY + POSTGRES_MODULES + MYSQL_MODULES,
    "postgresql": ASYNC_MACHINERY + MYSQL_MODULES + ("psycopg",),
    "mysql": ASYNC_MACHINERY + POSTGRES_MODULES + ("pymysql",),
}

MODELS = textwrap.dedent(
    """
    import os

    from registers.db import Model, database_registry


    @database_registry(os.environ["NOTES_URL"], table_name="notes")
    class Note(Model):
        id: int | None = None
        title: str
        body: str = ""
        done: bool = False
    """
)

APP = textwrap.dedent(
    """
    from registers.cli import CommandRegistry

    from models import Note

    cli = CommandRegistry(prog="app")
    cli.crud(Note)
    cli.run()
    """
)

# `python app.py --help` in this process, then the async twins of the same model.
PROBE = textwrap.dedent(
    """
    import asyncio, contextlib, io, json, os, runpy, sys

    watched, sqlite_file = sys.argv[1].split(","), sys.argv[2]
    sys.argv = ["app.py", "--help"]
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        try:
            runpy.run_path("app.py", run_name="__main__")
        except SystemExit as exc:
            status = exc.code
    report = {
        "status": status,
        "help": out.getvalue(),
        "imported": sorted(m for m in watched if m in sys.modules),
        "file_created": bool(sqlite_file) and os.path.exists(sqlite_file),
    }

    from models import Note

    from registers.db import adispose_all


    async def twins():
        made = await Note.objects.acreate(title="a", done=True)
        got = await Note.objects.aget(made.id)
        async with Note.objects.atransaction():
            await Note.objects.aupdate_where({"id": made.id}, body="b")
        count = await Note.objects.acount()
        await adispose_all()
        return [got == made, count]


    report["twins"] = asyncio.run(twins())
    report["sync_sees"] = Note.objects.get(1).model_dump()
    report["async_imported"] = sorted(m for m in watched if m in sys.modules)
    Note.objects.dispose()
    print(json.dumps(report))
    """
)

_WATCHED = sorted(set(ASYNC_MACHINERY + POSTGRES_MODULES + MYSQL_MODULES))


def _run_probe(cwd: Path, url: str, sqlite_file: str) -> dict[str, Any]:
    result = subprocess.run(
        [sys.executable, "-c", PROBE, ",".join(_WATCHED), sqlite_file], cwd=cwd,
        env={**os.environ, "NOTES_URL": url}, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    report: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return report


@functools.cache
def _by_hand_imports() -> frozenset[str]:
    """What ``import argparse, pydantic, sqlalchemy`` alone imports of ``_WATCHED``:
    SQLAlchemy 2.1 imports ``asyncio`` itself, and 2.0 (the supported floor) ``greenlet``
    too, which registers cannot avoid."""
    code = (
        "import argparse, json, sys, pydantic, sqlalchemy\n"
        f"print(json.dumps(sorted(m for m in {_WATCHED!r} if m in sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=120)
    return frozenset(json.loads(out.stdout))


def test_by_hand_baseline_imports_no_async_machinery_of_registers_nor_a_dialect() -> None:
    # the baseline excuses nothing registers owns, no driver and no dialect: only what
    # `import sqlalchemy` loads itself (asyncio; greenlet too on SQLAlchemy 2.0)
    assert _by_hand_imports() <= {"asyncio", "greenlet"}


def test_help_of_a_crud_app_imports_no_async_machinery_nor_other_backends(
    backend: str, database_url: str, tmp_path: Path
) -> None:
    (tmp_path / "models.py").write_text(MODELS)
    (tmp_path / "app.py").write_text(APP)
    sqlite_file = sa.make_url(database_url).database if backend == "sqlite" else ""
    report = _run_probe(tmp_path, database_url, sqlite_file or "")

    assert report["status"] == 0
    assert "notes" in report["help"] and "usage: app" in report["help"]
    assert report["file_created"] is False
    not_imported = set(NOT_FOR[backend]) - _by_hand_imports()
    assert set(report["imported"]) & not_imported == set()
    # the async twins still work afterwards, in the same process, and load what they need
    assert report["twins"] == [True, 1]
    assert report["sync_sees"] == {"id": 1, "title": "a", "body": "b", "done": True}
    assert {"registers.db.async_engine", "sqlalchemy.ext.asyncio"} <= set(
        report["async_imported"]
    )


def test_registers_db_adispose_all_is_the_async_engines_once_asked_for() -> None:
    code = (
        "import json, sys, registers.db\n"
        "listed = 'adispose_all' in dir(registers.db)\n"
        "before = 'registers.db.async_engine' in sys.modules\n"
        "from registers.db import adispose_all\n"
        "from registers.db import aio, async_engine\n"
        "print(json.dumps([listed, before, adispose_all is async_engine.adispose_all,\n"
        "                  aio.adispose_all is adispose_all,\n"
        "                  'adispose_all' in registers.db.__all__,\n"
        "                  'adispose_all' in dir(registers.db)]))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=120)
    assert json.loads(out.stdout) == [True, False, True, True, True, True]


def test_registers_db_has_no_other_lazy_names() -> None:
    import registers.db

    with pytest.raises(AttributeError, match="no_such_name"):
        registers.db.no_such_name  # noqa: B018
