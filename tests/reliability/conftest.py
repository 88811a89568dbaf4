"""Fixtures of the reliability suite: measured figures, printed after the run.

Every test that measures something (rows written, faults injected, inputs tried, rows
lost) records it with the ``figures`` fixture; the terminal summary lists them under
"reliability figures" so ``docs/reliability.md`` can quote a real run.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

_FIGURES: dict[str, list[str]] = {}

Record = Callable[[str, object], None]


@pytest.fixture
def figures(request: pytest.FixtureRequest) -> Record:
    """``figures("rows lost", 0)`` records one measured figure for this test."""

    def record(name: str, value: object) -> None:
        _FIGURES.setdefault(request.node.nodeid, []).append(f"{name}={value}")

    return record


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not _FIGURES:
        return
    terminalreporter.section("reliability figures")
    for nodeid, values in sorted(_FIGURES.items()):
        name = nodeid.split("tests/reliability/", 1)[-1]
        terminalreporter.write_line(f"{name}: {', '.join(values)}")
