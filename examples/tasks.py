"""tasks: a small task tracker built with both halves of registers.

``registers.db`` stores the ``Task`` model in ``tasks.db`` in the working directory (no
configuration: the file is named after the table). ``registers.cli`` turns the typed
functions below into commands, options and help::

    python examples/tasks.py add "Write the docs" --priority high --due 2025-01-31 --tag docs
    python examples/tasks.py list
    python examples/tasks.py done 1
    python examples/tasks.py stats

Set ``REGISTERS_TASKS_DB`` to a file path or a database URL to store tasks elsewhere.
"""

from __future__ import annotations

import os
from datetime import date, datetime, timezone
from typing import Any, Literal

from pydantic import Field, ValidationError

from registers.cli import CommandRegistry, FrameworkError, MiddlewareChain
from registers.cli.exceptions import UsageError
from registers.db import Model, database_registry

Priority = Literal["low", "normal", "high"]
Status = Literal["open", "done"]
PRIORITIES: tuple[Priority, ...] = ("high", "normal", "low")
STATUSES: tuple[Status, ...] = ("open", "done")


def _now() -> datetime:
    return datetime.now(timezone.utc)


# `None` means a SQLite file named after the table (`tasks.db`) in the working directory.
# The table is created on the first command that runs (see `_ensure_table`), not at import,
# so `--help` never creates a file.
@database_registry(os.environ.get("REGISTERS_TASKS_DB") or None, auto_create=False)
class Task(Model):
    """One thing to do."""

    id: int | None = None
    title: str = Field(min_length=1, max_length=200)
    status: Status = "open"
    priority: Priority = "normal"
    due: date | None = None
    tags: list[str] = Field(default_factory=list)
    created_at: datetime = Field(default_factory=_now)
    done_at: datetime | None = None


class TaskNotFound(FrameworkError):
    """No task has the requested id (exit status 1, one line on stderr)."""

    def __init__(self, task_id: int) -> None:
        super().__init__(f"no task with id {task_id}")


cli = CommandRegistry(
    prog="tasks.py",
    description="A small task tracker (registers demo). Tasks live in tasks.db.",
    version="1.0",
)


@cli.register(ops=["a"])
def add(
    title: str,
    priority: Priority = "normal",
    due: date | None = None,
    tag: tuple[str, ...] = (),
) -> str:
    """Add a task.

    Args:
        title: What needs doing.
        priority: How urgent it is.
        due: When it is due (YYYY-MM-DD).
        tag: One or more tags; repeat the option to add more.
    """
    try:
        task = Task.objects.create(
            title=title.strip(), priority=priority, due=due, tags=_unique(tag)
        )
    except ValidationError as exc:
        raise UsageError(f"invalid task: {_first_error(exc)}") from None
    return f"Added task {task.id}: {task.title}"


@cli.register(name="list", ops=["ls"])
def list_tasks(
    status: Literal["open", "done", "all"] = "open",
    priority: Priority | None = None,
    search: str | None = None,
    limit: int | None = None,
) -> str:
    """List tasks as a table, oldest first.

    Args:
        status: Which tasks to show.
        priority: Only tasks with this priority.
        search: Only tasks whose title contains this text (case-insensitive).
        limit: Show at most this many tasks.
    """
    if limit is not None and limit < 1:
        raise UsageError(f"--limit must be a positive number, got {limit}")
    criteria: dict[str, Any] = {}
    if status != "all":
        criteria["status"] = status
    if priority is not None:
        criteria["priority"] = priority
    if search:
        criteria["title__icontains"] = search
    tasks = Task.objects.filter(order_by="id", limit=limit, **criteria)
    if not tasks:
        if Task.objects.exists():
            return "No tasks match (try --status all)."
        return 'No tasks yet. Add one: tasks.py add "Write the docs"'
    total = Task.objects.count(**criteria)
    footer = f"{len(tasks)} of {total} tasks" if total > len(tasks) else _plural(total, "task")
    return f"{_table(tasks)}\n\n{footer}"


@cli.register(ops=["d"])
def done(task_id: int) -> str:
    """Mark a task as done.

    Args:
        task_id: The task's id (see `list`).
    """
    task = _require(task_id)
    if task.status == "done":
        return f"Task {task.id} was already done."
    task.status, task.done_at = "done", _now()
    task.save()
    return f"Done: {task.title}"


@cli.register(ops=["rm"])
def remove(task_id: int) -> str:
    """Delete a task for good.

    Args:
        task_id: The task's id (see `list`).
    """
    task = _require(task_id)
    task.delete()
    return f"Removed task {task.id}: {task.title}"


@cli.register()
def stats() -> str:
    """Count tasks by status, and open tasks by priority."""
    counts: list[tuple[str, int]] = [("total", Task.objects.count())]
    counts += [(status, Task.objects.count(status=status)) for status in STATUSES]
    open_counts: list[tuple[str, int]] = [
        (p, Task.objects.count(status="open", priority=p)) for p in PRIORITIES
    ]
    open_counts.append(("overdue", Task.objects.count(status="open", due__lt=date.today())))
    lines = ["by status"]
    lines += [f"  {name:<10}{count:>5}" for name, count in counts]
    lines.append("open tasks by priority")
    lines += [f"  {name:<10}{count:>5}" for name, count in open_counts]
    return "\n".join(lines)


# --- helpers ---------------------------------------------------------------------------


def _require(task_id: int) -> Task:
    task = Task.objects.get(task_id) if task_id > 0 else None
    if task is None:
        raise TaskNotFound(task_id)
    return task


def _unique(tags: tuple[str, ...]) -> list[str]:
    cleaned = (t.strip() for t in tags)
    return list(dict.fromkeys(t for t in cleaned if t))


def _first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    field = ".".join(str(part) for part in error["loc"])
    return f"{field}: {error['msg']}" if field else str(error["msg"])


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _table(tasks: list[Task]) -> str:
    today = date.today()
    header = ("ID", "STATUS", "PRIORITY", "DUE", "TAGS", "TITLE")
    rows = [
        (
            str(t.id),
            t.status,
            t.priority,
            (t.due.isoformat() + (" !" if t.status == "open" and t.due < today else ""))
            if t.due
            else "-",
            ",".join(t.tags) or "-",
            t.title,
        )
        for t in tasks
    ]
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header) - 1)]
    lines: list[str] = []
    for row in (header, *rows):
        cells = [cell.ljust(width) for cell, width in zip(row, widths)]
        lines.append("  ".join([*cells, row[-1]]))
    return "\n".join(lines)


def _ensure_table(command: str, kwargs: dict[str, Any]) -> None:
    Task.create_schema()  # idempotent: creates tasks.db and its table on first use


def main(argv: list[str] | None = None) -> None:
    chain = MiddlewareChain()
    chain.add_pre(_ensure_table)
    cli.run(argv, middleware=chain)


if __name__ == "__main__":
    main()
