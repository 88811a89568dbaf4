"""Helpers for the reliability tests: worker processes, raw row access, hostile corpora."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import sqlalchemy as sa

WORKER = Path(__file__).with_name("_worker.py")


class Worker:
    """A ``_worker.py`` subprocess whose stdout lines can be awaited."""

    def __init__(self, *args: object) -> None:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen(
            [sys.executable, str(WORKER), *map(str, args)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def wait_for(self, prefix: str, timeout: float = 60) -> str:
        """The first stdout line starting with ``prefix`` (fails if the worker ends first)."""
        while True:
            try:
                line = self.lines.get(timeout=timeout)
            except queue.Empty:
                self.kill()
                raise AssertionError(f"worker printed no {prefix!r} in {timeout}s") from None
            if line is None:
                raise AssertionError(
                    f"worker exited ({self.proc.wait()}) before {prefix!r}: {self.stderr()}"
                )
            self.seen.append(line)
            if line.startswith(prefix):
                return line

    def drain(self) -> list[str]:
        """Every stdout line not consumed yet (call after the process ended)."""
        out: list[str] = []
        while True:
            try:
                line = self.lines.get(timeout=10)
            except queue.Empty:
                return out
            if line is None:
                return out
            out.append(line)

    def kill(self) -> None:
        """SIGKILL: no cleanup, no rollback, no atexit; like a power cut for the process."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)

    def stderr(self) -> str:
        assert self.proc.stderr is not None
        return self.proc.stderr.read()[-2000:] if self.proc.poll() is not None else ""


def raw_rows(url: str, sql: str, params: dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
    """Rows of ``sql`` read through a private engine (no registers code involved)."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(sa.text(sql), params or {})]
    finally:
        engine.dispose()


def sqlite_path(url: str) -> str:
    return url.removeprefix("sqlite:///")


def xfail_on(request: Any, backends: tuple[str, ...], reason: str) -> None:
    """Mark this test strict-xfail when it runs on one of ``backends`` (a known bug)."""
    backend = getattr(request.node, "callspec", None)
    current = backend.params.get("backend") if backend is not None else None
    if current in backends:
        import pytest

        request.applymarker(pytest.mark.xfail(strict=True, reason=reason))
