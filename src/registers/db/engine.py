"""Engines per URL: the :class:`~registers.db.database.Database` of each database
(shared by every model of it, however its URL is spelt), ``get_engine``, ``metadata_for``,
``dispose_engine`` / ``dispose_all``, and what a forked child must not inherit.
"""

from __future__ import annotations

import os
import threading

import sqlalchemy as sa

from registers.db.connect import DatabaseOptions, install_connect_hooks, on_configure
from registers.db.database import IDLE_CHECK_SECONDS, SQLITE_BUSY_TIMEOUT_MS, Database
from registers.db.exceptions import ConfigurationError
from registers.db.identity import database_identity
from registers.db.sqlite_setup import configure_sqlite

__all__ = [
    "IDLE_CHECK_SECONDS",
    "SQLITE_BUSY_TIMEOUT_MS",
    "Database",
    "configure_sqlite",
    "database_identity",
    "dispose_all",
    "dispose_engine",
    "get_database",
    "get_engine",
    "install_connect_hooks",
    "metadata_for",
]


_databases: dict[str, Database] = {}
_databases_lock = threading.Lock()

def _engine_key(url: str) -> str:
    """Engines are shared by every spelling of one database for one user."""
    try:
        user = sa.make_url(url).username or ""
    except Exception:
        return url
    return f"{user}@{database_identity(url)}"


def _reconfigure(url: str, options: DatabaseOptions) -> None:
    """Apply new options to the database of ``url`` if it is open (configure_database)."""
    db = _databases.get(url)
    if db is not None:
        db.reconfigure(options)


on_configure(_reconfigure)


def get_database(url: str) -> Database:
    """The :class:`Database` for ``url``, created on first use.

    Every spelling of the same database (see :func:`database_identity`) for the same user
    gets the same :class:`Database`: one engine, one ``MetaData``.
    """
    relative = _cwd_relative(url)
    db = None if relative else _databases.get(url)
    if db is not None:
        return db
    key = _engine_key(url)
    with _databases_lock:
        db = _databases.get(key)
        if db is None:
            db = Database(url)
            _databases[key] = db
        if not relative:  # a relative path names another file once the cwd changes
            _databases[url] = db
        return db


def _cwd_relative(url: str) -> bool:
    """Whether ``url`` is a SQLite file given by a path relative to the working directory."""
    if not url.startswith("sqlite"):
        return False
    try:
        path = sa.make_url(url).database or ""
    except Exception:
        return False
    return bool(path) and path != ":memory:" and not path.startswith("file:") and \
        "mode=memory" not in url and not os.path.isabs(path)


def _find_database(url: str) -> Database | None:
    db = _databases.get(url)
    return db if db is not None else _databases.get(_engine_key(url))


def metadata_for(url: str) -> sa.MetaData:
    """The SQLAlchemy ``MetaData`` with every registered table of the database ``url`` names.

    Use it as Alembic's ``target_metadata`` for autogenerate. Any spelling of the database
    works (``postgresql://`` for ``postgresql+psycopg://``, ``./app.db`` for ``app.db``,
    a default port left out); a bare path means a SQLite file, as in the decorator.

    Raises:
        ConfigurationError: no model is registered on that database (the message names the
            databases that have models, so a typo or a models module that was not imported
            shows at once instead of Alembic planning to drop every table).
    """
    from registers.db.typing_utils import normalize_url

    try:
        full = normalize_url(url, "")
    except ValueError as exc:
        raise ConfigurationError(f"metadata_for: {exc}") from exc
    identity = database_identity(full)
    found: list[Database] = []
    for db in list(_databases.values()):
        if db.metadata.tables and db.identity == identity and db not in found:
            found.append(db)
    if len(found) == 1:
        return found[0].metadata
    if found:  # the same database through several users: one MetaData with every table
        merged = sa.MetaData()
        for db in found:
            for table in db.metadata.sorted_tables:
                if table.name not in merged.tables:
                    table.to_metadata(merged)
        return merged
    raise ConfigurationError(f"no model is registered for {_display(full)}; {_registered()}")


def registered_urls() -> list[str]:
    """The URLs (as registered, passwords hidden) of the databases that have models."""
    seen: dict[int, str] = {}
    for db in list(_databases.values()):
        if db.metadata.tables:
            seen.setdefault(id(db), _display(db.key))
    return sorted(set(seen.values()))


def _registered() -> str:
    urls = registered_urls()
    if not urls:
        return "no model is registered on any database yet (import the models module first)"
    return "models are registered for: " + ", ".join(urls)


def _display(url: str) -> str:
    try:
        return sa.make_url(url).render_as_string(hide_password=True)
    except Exception:
        return url


def get_engine(url: str) -> sa.Engine:
    """The one SQLAlchemy engine ``registers`` uses for ``url``.

    A bare path such as ``"app.db"`` means ``sqlite:///app.db``. Tables of models
    registered with ``auto_create`` and not yet used are created first, so raw SQL finds
    them.
    """
    from registers.db.typing_utils import normalize_url

    return get_database(normalize_url(url, "")).ready_engine()


def dispose_engine(url: str) -> bool:
    """Release every connection held for ``url``. Returns whether one was held.

    Models of that URL keep working: connections are opened again on next use.
    """
    from registers.db.typing_utils import normalize_url

    db = _find_database(normalize_url(url, ""))
    if db is None:
        return False
    db.dispose()
    return True


def dispose_all() -> None:
    """Release the connections of every database."""
    for db in {id(db): db for db in list(_databases.values())}.values():
        db.dispose()


def _after_fork_in_child() -> None:
    # A forked child must never reuse (or close) the parent's connections, pool or
    # transaction.
    for db in {id(db): db for db in _databases.values()}.values():
        db.forget_parents_connections()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
