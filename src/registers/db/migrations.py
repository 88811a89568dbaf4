"""Migrations on Alembic with nothing to wire: the engine of ``registers db``.

``registers db init --models app.models`` writes a ``migrations/`` folder (Alembic's scripts
directory, an ``alembic.ini`` and a three-line ``env.py`` calling :func:`run_env`). From then
on every command here, and plain ``alembic -c migrations/alembic.ini ...``, imports the
models without creating their tables and compares them with the database.

Each ``registers db`` command has a twin here for code that migrates itself (a FastAPI
lifespan, a deploy script)::

    from registers.db import migrations

    migrations.upgrade("app.db", directory="migrations")   # to the newest script

What this module adds to Alembic:

* the models' ``MetaData`` for the URL (:func:`registers.db.metadata_for`), imported inside
  :func:`registers.db.schema.defer_creation` so ``auto_create`` does not create the tables;
* autogenerate set up for registers' tables: batch mode on SQLite, types and server
  defaults compared, and a back-fill for a new ``NOT NULL`` column whose field has a default
  (the column is added with that default as ``DEFAULT``, which is dropped again after);
* one migrating process at a time: a PostgreSQL advisory lock, a MariaDB ``GET_LOCK``, or
  SQLite's write lock (``BEGIN IMMEDIATE``). A second process waits, then finds nothing
  left to do;
* a migration on SQLite runs in one transaction with foreign keys off (as SQLite asks for
  table rebuilds) and a ``foreign_key_check`` before commit, so a failed upgrade leaves the
  database as it was (PostgreSQL is transactional anyway; MariaDB commits each DDL statement);
* one-line errors (:class:`~registers.db.exceptions.ConfigurationError` for a setup problem,
  :class:`~registers.db.exceptions.MigrationError` for a migration that cannot run) for an
  unimportable models module, a URL without models, a database ahead of the scripts, two
  heads, and a failing statement.

Alembic is an optional dependency: ``pip install 'registers[migrations]'``.
"""
from __future__ import annotations

import io
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from registers.db.exceptions import ConfigurationError
from registers.db.migration_autogen import _describe
from registers.db.migration_env import render_item, run_env
from registers.db.migration_support import (
    _ENV_PY,
    _INI,
    _INI_TEXT,
    _SCRIPT_MAKO,
    DEFAULT_DIRECTORY,
    LOCK_TIMEOUT,
    _alembic,
    _alembic_errors,
    _config,
    _one_head,
    _resolve_url,
    _script,
    import_models,
)

if TYPE_CHECKING:
    from alembic.config import Config

__all__ = [
    "DEFAULT_DIRECTORY",
    "Revision",
    "check",
    "current",
    "downgrade",
    "history",
    "import_models",
    "init",
    "render_item",
    "revision",
    "run_env",
    "sql",
    "upgrade",
]

@dataclass(frozen=True)
class Revision:
    """One migration script (:func:`history`)."""

    revision: str
    down_revision: tuple[str, ...]
    message: str
    is_head: bool
    path: str

    def __str__(self) -> str:
        down = ", ".join(self.down_revision) or "<base>"
        head = " (head)" if self.is_head else ""
        return f"{down} -> {self.revision}{head}, {self.message}"


# --- commands -------------------------------------------------------------------------


def init(
    models: Sequence[str] | str,
    *,
    url: str | None = None,
    directory: str | os.PathLike[str] = DEFAULT_DIRECTORY,
    root: str | os.PathLike[str] | None = None,
) -> Path:
    """Write a migrations folder for the models of ``models``; returns the folder.

    The models are imported first (without creating tables) and ``url``, when given, must
    be a database they are registered on, so a typo fails here, before anything is written.

    Args:
        models: The module(s) whose import registers the models (``"app.models"``).
        url: The database to migrate, stored in the folder's ``alembic.ini``. By default,
            the one database the models are registered on.
        directory: The folder to create (``migrations``); it must not exist or be empty.
        root: The project folder the models are imported from (the working directory).

    Raises:
        ConfigurationError: the folder exists and is not empty, a module cannot be
            imported, or ``url`` has no models.
    """
    _alembic()
    names = [models] if isinstance(models, str) else list(models)
    names = [n.strip() for m in names for n in m.split(",") if n.strip()]
    folder = Path(directory).resolve()
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise ConfigurationError(f"{str(directory)!r} already exists and is not empty")
    root = Path(root).resolve() if root is not None else Path.cwd()
    import_models(*names, root=root)
    _resolve_url(url)
    stored = "" if url is None else url
    text = _INI_TEXT.format(
        directory=os.path.relpath(folder, root),
        models=", ".join(names),
        url=stored.replace("%", "%%"),
        root=os.path.relpath(root, folder),
    )
    (folder / "versions").mkdir(parents=True, exist_ok=True)
    (folder / _INI).write_text(text, encoding="utf-8")
    (folder / "env.py").write_text(_ENV_PY, encoding="utf-8")
    (folder / "script.py.mako").write_text(_SCRIPT_MAKO, encoding="utf-8")
    return folder


def revision(
    message: str,
    *,
    url: str | None = None,
    directory: str | os.PathLike[str] = DEFAULT_DIRECTORY,
    autogenerate: bool = True,
    empty: bool = False,
) -> Path | None:
    """Write the next migration script; returns its path, or ``None`` if nothing changed.

    With ``autogenerate`` (the default) the script holds the operations that bring the
    database (which must be at the newest script) to the models. When the models and the
    database agree no script is written, unless ``empty`` asks for one (for a data
    migration written by hand).

    Raises:
        MigrationError: the database is not at the newest script, the scripts have two
            heads, or the database cannot be read.
        ConfigurationError: see :func:`upgrade`.
    """
    alembic = _alembic()
    if not isinstance(message, str) or not message.strip():
        raise ConfigurationError("a revision needs a message (-m 'add unit to items')")
    config, _ = _config(directory, url, action="revision")
    config.attributes["registers.empty"] = empty or not autogenerate
    _one_head(_script(config))
    with _alembic_errors("write a revision"):
        script = alembic.command.revision(config, message=message, autogenerate=autogenerate)
    scripts = script if isinstance(script, list) else [script]
    scripts = [s for s in scripts if s is not None]
    return Path(scripts[0].path) if scripts else None


def upgrade(
    url: str | None = None,
    revision: str = "head",
    *,
    directory: str | os.PathLike[str] = DEFAULT_DIRECTORY,
    lock_timeout: float = LOCK_TIMEOUT,
) -> list[str]:
    """Apply the scripts up to ``revision`` (the newest by default).

    Safe to call from every process of an application at start-up: one process migrates
    while the others wait for its lock, then find nothing left to do.

    Args:
        url: The database (default: the folder's ``url``, else the models' one database).
        revision: A revision id (a unique prefix works), ``head``, or ``+N``.
        directory: The migrations folder.
        lock_timeout: Seconds to wait for another migrating process.

    Returns:
        The revisions applied, oldest first (empty when the database was up to date).

    Raises:
        ConfigurationError: no migrations folder, the models cannot be imported, or the URL
            has no models.
        MigrationError: two heads, a database ahead of the scripts (at a revision no
            script has), an unknown revision, a statement that fails (PostgreSQL and
            SQLite roll the whole upgrade back), or the lock was not had in time.
    """
    alembic = _alembic()
    config, _ = _config(directory, url, lock_timeout=lock_timeout, action="upgrade")
    script = _script(config)
    if revision in ("head", "heads"):
        _one_head(script)
    return _run(alembic.command.upgrade, config, revision, "upgrade")


def downgrade(
    revision: str,
    url: str | None = None,
    *,
    directory: str | os.PathLike[str] = DEFAULT_DIRECTORY,
    lock_timeout: float = LOCK_TIMEOUT,
) -> list[str]:
    """Revert scripts down to ``revision`` (an id, ``-1``, or ``base`` for everything).

    Returns:
        The revisions reverted, newest first.

    Raises:
        ConfigurationError, MigrationError: as :func:`upgrade`.
    """
    alembic = _alembic()
    if not isinstance(revision, str) or not revision.strip():
        raise ConfigurationError("downgrade needs a revision (an id, -1, or base)")
    config, _ = _config(directory, url, lock_timeout=lock_timeout, action="downgrade")
    _script(config)
    return _run(alembic.command.downgrade, config, revision, "downgrade")


def _run(command: Callable[[Any, str], None], config: Any, revision: str,
         action: str) -> list[str]:
    """Run Alembic's ``upgrade``/``downgrade`` to ``revision``; the revisions it applied
    or reverted, in the order it did (the env script records them)."""
    done: list[str] = config.attributes.setdefault("registers.applied", [])
    with _alembic_errors(f"{action} to {revision}"):
        command(config, revision)
    return list(done)


def current(
    url: str | None = None, *, directory: str | os.PathLike[str] = DEFAULT_DIRECTORY
) -> list[str]:
    """The revision(s) the database is at (empty: no script applied yet).

    Raises:
        ConfigurationError: as :func:`upgrade`.
        MigrationError: the database is at a revision no script has.
    """
    config, _ = _config(directory, url, action="current")
    return list(_run_env_only(config, "read the current revision"))


def history(*, directory: str | os.PathLike[str] = DEFAULT_DIRECTORY) -> list[Revision]:
    """Every migration script, newest first. Reads no database."""
    config, _ = _config(directory, None)
    script = _script(config)
    heads = set(script.get_heads())
    found = []
    with _alembic_errors("read the history"):
        for item in script.walk_revisions():
            down = item.down_revision
            downs = () if down is None else (down,) if isinstance(down, str) else tuple(down)
            found.append(
                Revision(item.revision, downs, (item.doc or "").strip(),
                         item.revision in heads, item.path)
            )
    return found


def check(
    url: str | None = None, *, directory: str | os.PathLike[str] = DEFAULT_DIRECTORY
) -> list[str]:
    """How the models and the database differ; empty when they agree.

    A database behind the newest script is a difference too (``not at head``), so in CI
    ``registers db check`` fails both for a model changed without a script and for a script
    not applied.

    Raises:
        ConfigurationError, MigrationError: as :func:`upgrade`.
    """
    alembic = _alembic()
    config, _ = _config(directory, url, action="check")
    head = _one_head(_script(config))
    at = _run_env_only(config, "read the current revision")
    if (head is None and at) or (head is not None and tuple(at) != (head,)):
        shown = ", ".join(at) or "<base>"
        return [f"database at {shown}, not at the newest script {head or '<base>'}: "
                "run `registers db upgrade`"]
    try:
        with _alembic_errors("compare the models with the database"):
            alembic.command.check(config)
    except alembic.util.AutogenerateDiffsDetected as exc:
        diffs = getattr(exc, "diffs", None)
        return [_describe(diff) for diff in diffs] if diffs else [str(exc)]
    return []


def sql(
    revision: str = "head",
    *,
    start: str | None = None,
    url: str | None = None,
    directory: str | os.PathLike[str] = DEFAULT_DIRECTORY,
) -> str:
    """The SQL of an upgrade, for a DBA to review or run; touches no database.

    Args:
        revision: Where the upgrade ends (``head``).
        start: Where it starts (default: an empty database).

    Raises:
        ConfigurationError, MigrationError: as :func:`upgrade` (on SQLite, a change that
            needs a table rebuild cannot be rendered offline).
    """
    alembic = _alembic()
    buffer = io.StringIO()
    config, _ = _config(directory, url, output_buffer=buffer, action="sql")
    if revision in ("head", "heads"):
        _one_head(_script(config))
    target = f"{start}:{revision}" if start else revision
    with _alembic_errors(f"render the SQL of {target}"):
        alembic.command.upgrade(config, target, sql=True)
    return buffer.getvalue()


def _run_env_only(config: Config, action: str) -> tuple[str, ...]:
    """Run env.py with a function that only reads the current heads."""
    alembic = _alembic()
    from alembic.runtime.environment import EnvironmentContext

    script = _script(config)
    found: list[tuple[str, ...]] = []

    def read(rev: Any, context: Any) -> list[Any]:
        found.append(tuple(context.get_current_heads()))
        return []

    with _alembic_errors(action), EnvironmentContext(config, script, fn=read):
        script.run_env()
    del alembic
    return found[0] if found else ()
