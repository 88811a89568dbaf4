"""Fixtures for the registers.cli tests."""

from __future__ import annotations

import pytest

from registers.cli import CommandRegistry


@pytest.fixture
def cli() -> CommandRegistry:
    """An empty registry with a fixed program name (messages start with ``app``)."""
    return CommandRegistry(prog="app")
