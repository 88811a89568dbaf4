"""The Alembic environment of ``registers db``: :func:`run_env`, called by the ``env.py``
that ``registers db init`` writes (one migrating process at a time, SQLite in one
transaction with a foreign key check, the database never ahead of the scripts).
"""

from __future__ import annotations

import contextlib
import hashlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from registers.db.connect import driver_missing
from registers.db.engine import database_identity, metadata_for
from registers.db.exceptions import MigrationError
from registers.db.migration_autogen import (
    _install_check_comparator,
    _process_revision_directives,
)
from registers.db.migration_support import (
    _READ_ONLY,
    LOCK_TIMEOUT,
    _read_settings,
    _resolve_url,
    _Settings,
    import_models,
)

if TYPE_CHECKING:
    from alembic.config import Config
    from alembic.script import ScriptDirectory


# --- env.py ---------------------------------------------------------------------------


def run_env() -> None:
    """The body of the ``env.py`` that ``registers db init`` writes.

    Reads ``[registers]`` from the ``alembic.ini`` in use (models, url, root), imports the
    models without creating tables, then runs Alembic online (with the migration lock) or
    offline (``--sql``).
    """
    from alembic import context

    config = context.config
    ini = Path(config.config_file_name or "")
    settings = _read_settings(ini) if ini.is_file() else _Settings(Path.cwd(), [], None,
                                                                    Path.cwd())
    import_models(*settings.models, root=settings.root)
    url = _resolve_url(config.attributes.get("registers.url") or settings.url)
    metadata = metadata_for(url)
    family = _family(url)
    options: dict[str, Any] = {
        "target_metadata": metadata,
        "render_as_batch": family == "sqlite",
        "compare_type": True,
        "compare_server_default": True,
        "process_revision_directives": _process_revision_directives,
        "on_version_apply": _record_applied(config),
        "registers_compare_checks": True,
        "render_item": render_item,
    }
    _install_check_comparator()
    if context.is_offline_mode():
        context.configure(
            url=url, literal_binds=True, dialect_opts={"paramstyle": "named"}, **options
        )
        with context.begin_transaction():
            context.run_migrations()
        return
    timeout = float(config.attributes.get("registers.lock_timeout", LOCK_TIMEOUT))
    read_only = config.attributes.get("registers.action") in _READ_ONLY
    engine = _migration_engine(url, family, timeout)
    try:
        with engine.connect() as connection, _lock(connection, family, url, timeout):
            transaction = connection.begin()
            try:
                context.configure(connection=connection, dont_mutate=read_only, **options)
                _refuse_unknown_revisions(context.get_context(), context.script)
                context.run_migrations()
                if family == "sqlite" and not read_only:
                    _foreign_key_check(connection)
            except BaseException:
                transaction.rollback()
                raise
            if read_only:  # revision, check, current: leave the database as it was
                transaction.rollback()
            else:
                transaction.commit()
    finally:
        engine.dispose()


def _family(url: str) -> str:
    backend = sa.make_url(url).get_backend_name()
    return "mysql" if backend in ("mysql", "mariadb") else backend


def _record_applied(config: Config) -> Any:
    applied = config.attributes.setdefault("registers.applied", [])

    def record(*, ctx: Any, step: Any, heads: Any, run_args: Any) -> None:
        if not step.is_stamp:
            applied.append(step.up_revision_id)

    return record


def _migration_engine(url: str, family: str, timeout: float) -> sa.Engine:
    """A private engine: plain connections, and on SQLite real transactions for DDL."""
    try:
        engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    except ImportError as exc:
        raise driver_missing(sa.make_url(url), exc) from exc
    if family != "sqlite":
        return engine

    @sa.event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, record: Any) -> None:
        # pysqlite runs DDL outside transactions unless it is told to leave them to us;
        # foreign keys off, as SQLite asks for table rebuilds (checked before commit).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
        cursor.execute("PRAGMA foreign_keys = OFF")
        cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _begin(connection: sa.Connection) -> None:
        # The write lock now: a second migrating process waits here for the first.
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


@contextlib.contextmanager
def _lock(connection: sa.Connection, family: str, url: str, timeout: float) -> Iterator[None]:
    """Hold the database's migration lock (SQLite: ``BEGIN IMMEDIATE`` does it)."""
    if family not in ("postgresql", "mysql"):
        yield  # SQLite and other backends: no lock of our own
        return
    digest = hashlib.sha1(f"registers-migrations:{database_identity(url)}".encode()).digest()
    if family == "postgresql":
        params: dict[str, Any] = {"k": int.from_bytes(digest[:8], "big", signed=True)}
        release = "SELECT pg_advisory_unlock(:k)"
        deadline = time.monotonic() + timeout
        while not connection.execute(sa.text("SELECT pg_try_advisory_lock(:k)"), params
                                     ).scalar():
            connection.rollback()
            if time.monotonic() > deadline:
                raise MigrationError(_lock_message(url, timeout))
            time.sleep(0.2)
        connection.commit()
    else:
        params = {"n": "registers_migrations_" + digest.hex()[:32]}
        release = "SELECT RELEASE_LOCK(:n)"
        got = connection.execute(sa.text("SELECT GET_LOCK(:n, :t)"),
                                 {**params, "t": max(int(timeout), 0)}).scalar()
        connection.commit()
        if got != 1:
            raise MigrationError(_lock_message(url, timeout))
    try:
        yield
    finally:
        with contextlib.suppress(sa.exc.SQLAlchemyError):
            connection.rollback()
            connection.execute(sa.text(release), params)
            connection.commit()


def _lock_message(url: str, timeout: float) -> str:
    shown = sa.make_url(url).render_as_string(hide_password=True)
    return (f"another process has been migrating {shown} for more than {timeout:g} s "
            "(the migration lock is still held)")


def _refuse_unknown_revisions(migration_context: Any, script: ScriptDirectory) -> None:
    """A database ahead of the scripts (or from other scripts) is an error, not a crash."""
    from alembic.script.revision import ResolutionError
    from alembic.util import CommandError

    for head in migration_context.get_current_heads():
        try:
            script.get_revision(head)
        except (ResolutionError, CommandError) as exc:
            raise MigrationError(
                f"the database is at revision {head!r}, which no script in {script.dir} has: "
                "it is ahead of these scripts (deploy the newer scripts) or was migrated "
                "from another project"
            ) from exc


def _foreign_key_check(connection: sa.Connection) -> None:
    rows = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
    if rows:
        table, rowid, parent = rows[0][0], rows[0][1], rows[0][2]
        raise MigrationError(
            f"the migration leaves {len(rows)} row(s) breaking a foreign key (first: "
            f"{table} rowid {rowid} -> {parent}); nothing was changed"
        )


def render_item(kind: str, obj: Any, autogen_context: Any) -> Any:
    """Alembic's ``render_item`` hook: scripts that use registers' own column types import
    their module (Alembic writes them by their full dotted name and leaves the import to
    the environment). Pass it to ``context.configure(render_item=...)`` in a hand-written
    ``env.py``."""
    module = type(obj).__module__
    if kind == "type" and module.startswith("registers."):
        autogen_context.imports.add(f"import {module}")
    return False  # Alembic's own rendering
