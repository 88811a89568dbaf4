"""Which database a URL names: one string for every spelling of the same database (the
key of :mod:`registers.db.engine`'s registry, of options and of migration locks)."""

from __future__ import annotations

import os

import sqlalchemy as sa

__all__ = ["database_identity"]

_DEFAULT_PORTS = {"postgresql": 5432, "mysql": 3306}


def database_identity(url: str) -> str:
    """Which database ``url`` names, the same string for every spelling of it.

    The driver (``postgresql://`` and ``postgresql+psycopg://``), the user and password,
    a missing default port, and the spelling of a SQLite file's path (``app.db``,
    ``./app.db``, an absolute path, a symbolic link) do not matter; host, port, database
    and query options (a PostgreSQL ``search_path``, for instance) do. In-memory and URI
    SQLite databases are only ever the same as themselves.
    """
    try:
        parsed = sa.make_url(url)
        backend = parsed.get_backend_name()
    except Exception:
        return url
    family = "mysql" if backend in ("mysql", "mariadb") else backend
    query = "&".join(
        f"{k}={v}" for k, v in sorted((k, str(v)) for k, v in parsed.query.items())
    )
    if family == "sqlite":
        path = parsed.database or ""
        if path in ("", ":memory:") or path.startswith("file:") or "mode=memory" in url:
            return url
        if query and "uri=true" in query.lower():
            return url
        return "sqlite:///" + os.path.normcase(os.path.realpath(path))
    host = (parsed.host or "localhost").lower()
    port: int | str = parsed.port or _DEFAULT_PORTS.get(family) or ""
    return f"{family}://{host}:{port}/{parsed.database or ''}" + (f"?{query}" if query else "")
