"""Shared fixtures: a ``database_url`` for every backend, each test isolated.

SQLite always runs (a fresh file per test). PostgreSQL and MariaDB run when
``REGISTERS_TEST_POSTGRES_URL`` / ``REGISTERS_TEST_MYSQL_URL`` are set (``.ci/run`` sets
them); each test then gets its own PostgreSQL schema or MariaDB database, dropped after
the test, so tests never see each other's tables.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

POSTGRES_ENV = "REGISTERS_TEST_POSTGRES_URL"
MYSQL_ENV = "REGISTERS_TEST_MYSQL_URL"

BACKENDS = ["sqlite", "postgresql", "mysql"]


def _server_url(env: str) -> str | None:
    return os.environ.get(env) or None


def _skip_reason(backend: str) -> str | None:
    env = {"postgresql": POSTGRES_ENV, "mysql": MYSQL_ENV}.get(backend)
    if env is None or _server_url(env):
        return None
    if os.environ.get("CI") == "true":
        raise pytest.UsageError(f"{env} is not set under CI=true: server tests must run in CI")
    return f"{env} is not set (no {backend} server configured)"


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    reason = _skip_reason(name)
    if reason:
        pytest.skip(reason)
    return name


@pytest.fixture
def database_url(backend: str, tmp_path: Path) -> Iterator[str]:
    """A database URL private to this test, on each configured backend."""
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'test.db'}"
        yield url
        _dispose(url)
        return
    if backend == "postgresql":
        yield from _postgres_schema(os.environ[POSTGRES_ENV])
    else:
        yield from _mysql_database(os.environ[MYSQL_ENV])


def _dispose(url: str) -> None:
    from registers.db import dispose_engine

    dispose_engine(url)


def _postgres_schema(base_url: str) -> Iterator[str]:
    import sqlalchemy as sa

    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(base_url, poolclass=sa.pool.NullPool)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in base_url else "?"
    url = f"{base_url}{sep}options=-csearch_path%3D{schema}"
    try:
        yield url
    finally:
        _dispose(url)
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def _mysql_database(base_url: str) -> Iterator[str]:
    import sqlalchemy as sa

    base = sa.make_url(base_url)
    name = f"{base.database}_t{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(base, poolclass=sa.pool.NullPool)
    with admin.begin() as conn:
        conn.execute(sa.text(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4"))
    url = base.set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        _dispose(url)
        with admin.begin() as conn:
            conn.execute(sa.text(f"DROP DATABASE IF EXISTS `{name}`"))
        admin.dispose()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> Iterator[str]:
    """A private SQLite file URL, for tests about SQLite specifically."""
    url = f"sqlite:///{tmp_path / 'test.db'}"
    yield url
    _dispose(url)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    _summarise_skips(terminalreporter)
    _summarise_backends(terminalreporter)


def _summarise_skips(terminalreporter: pytest.TerminalReporter) -> None:
    """One line per skip reason with its count (``-r`` in pyproject.toml leaves out ``s``,
    which prints one line per skipped location: hundreds without the servers)."""
    reasons: dict[str, int] = {}
    for report in terminalreporter.stats.get("skipped", []):
        longrepr = getattr(report, "longrepr", None)
        reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
        reason = reason.removeprefix("Skipped: ")
        reasons[reason] = reasons.get(reason, 0) + 1
    if not reasons:
        return
    terminalreporter.section("skipped, by reason")
    for reason, count in sorted(reasons.items(), key=lambda item: (-item[1], item[0])):
        terminalreporter.write_line(f"SKIPPED {count}: {reason}")


def _summarise_backends(terminalreporter: pytest.TerminalReporter) -> None:
    """Print how many database tests ran on each backend (CI reads this)."""
    counts: dict[str, dict[str, int]] = {}
    for outcome in ("passed", "failed", "skipped", "error"):
        for report in terminalreporter.stats.get(outcome, []):
            nodeid = getattr(report, "nodeid", "")
            for name in BACKENDS:
                if f"[{name}" in nodeid or f"-{name}]" in nodeid or f"-{name}-" in nodeid:
                    per = counts.setdefault(name, {})
                    per[outcome] = per.get(outcome, 0) + 1
    if not counts:
        return
    terminalreporter.section("database tests per backend")
    for name in BACKENDS:
        per = counts.get(name, {})
        line = ", ".join(f"{n} {k}" for k, n in sorted(per.items())) or "none"
        terminalreporter.write_line(f"{name}: {line}")
