"""The first async call imports SQLAlchemy's asyncio layer without blocking the event loop.

Importing ``sqlalchemy.ext.asyncio`` and the async driver takes about 300 ms on
a first use in a process. Each case runs in a fresh interpreter (so nothing is imported
yet) with an import hook that, when one of those modules starts importing, asks the event
loop to run a callback and waits for it: the loop can only run it if the import is not
happening on the loop's own thread. No timing is measured; the wait's timeout is only the
failure path.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

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
