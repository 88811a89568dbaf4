"""Fixtures for the registers.cli tests."""

from __future__ import annotations

import pytest

from registers.cli import CommandRegistry


@pytest.fixture(autouse=True)
def _no_forced_colour(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests see plain text even when the environment running them sets FORCE_COLOR."""
    monkeypatch.delenv("FORCE_COLOR", raising=False)


@pytest.fixture
def cli() -> CommandRegistry:
    """An empty registry with a fixed program name (messages start with ``app``)."""
    return CommandRegistry(prog="app")
