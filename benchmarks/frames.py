"""Python frames per hot-path operation (get, filter, create, upsert) on SQLite.

``python -m benchmarks.frames`` prints how many Python-level calls one operation makes
after warm-up (C calls excluded). Deterministic, unlike timings: the architecture keeps
these numbers from growing.
"""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from registers.db import database_registry, dispose_all


def count_calls(operation: Callable[[], Any]) -> int:
    operation()  # warm caches
    calls = 0

    def profile(frame: Any, event: str, arg: Any) -> None:
        nonlocal calls
        if event == "call":
            calls += 1

    sys.setprofile(profile)
    try:
        operation()
    finally:
        sys.setprofile(None)
    return calls - 1  # the operation lambda itself


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'frames.db'}"

        @database_registry(url, table_name="items", unique_fields=["code"])
        class Item(BaseModel):
            id: int | None = None
            code: str | None = None
            name: str
            qty: int = 0

        Item.objects.bulk_create([{"name": f"n{i}", "qty": i} for i in range(20)])
        counter = iter(range(10**9))
        operations: dict[str, Callable[[], Any]] = {
            "get by key": lambda: Item.objects.get(3),
            "filter": lambda: Item.objects.filter(qty__gte=5),
            "create": lambda: Item.objects.create(name="x", qty=1),
            "upsert by key": lambda: Item.objects.upsert(id=2, name="u", qty=2),
            "upsert by unique": lambda: Item.objects.upsert(code=f"c{next(counter)}", name="v"),
            "count": lambda: Item.objects.count(qty__gte=5),
        }
        for name, operation in operations.items():
            print(f"{name:18} {count_calls(operation):4d} Python calls")
        dispose_all()


if __name__ == "__main__":
    main()
