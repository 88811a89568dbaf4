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

import argparse
import configparser
import contextlib
import hashlib
import importlib
import io
import os
import sys
import time
import traceback
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from registers.db.engine import database_identity, metadata_for, registered_urls
from registers.db.exceptions import ConfigurationError, MigrationError, RegistryError
from registers.db.schema import defer_creation
from registers.db.typing_utils import normalize_url

if TYPE_CHECKING:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

__all__ = [
    "DEFAULT_DIRECTORY",
    "Revision",
    "check",
    "current",
    "downgrade",
    "history",
    "import_models",
    "init",
    "revision",
    "run_env",
    "sql",
    "upgrade",
]

DEFAULT_DIRECTORY = "migrations"
"""Where ``registers db`` looks for its scripts unless told otherwise (``--directory``)."""

LOCK_TIMEOUT = 600.0
"""Seconds a second migrating process waits for the first before giving up."""

_INI = "alembic.ini"
_READ_ONLY = frozenset({"revision", "check", "current"})
_SECTION = "registers"

_ENV_PY = '''"""Alembic environment written by `registers db init`: there is nothing to edit.

It imports the models named in alembic.ini ([registers] models) without creating their
tables, and hands registers' MetaData for the database to Alembic.
"""

from registers.db.migrations import run_env

run_env()
'''

_SCRIPT_MAKO = '''"""${message}

Revision ID: ${up_revision}
Revises: ${down_revision | comma,n}
Create Date: ${create_date}

"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
${imports if imports else ""}

# revision identifiers, used by Alembic.
revision: str = ${repr(up_revision)}
down_revision: str | Sequence[str] | None = ${repr(down_revision)}
branch_labels: str | Sequence[str] | None = ${repr(branch_labels)}
depends_on: str | Sequence[str] | None = ${repr(depends_on)}


def upgrade() -> None:
    ${upgrades if upgrades else "pass"}


def downgrade() -> None:
    ${downgrades if downgrades else "pass"}
'''

_INI_TEXT = """\
# Written by `registers db init`. `registers db ...` reads it, and so does plain Alembic:
#   alembic -c {directory}/alembic.ini upgrade head
[alembic]
script_location = %(here)s

[registers]
# The modules whose import registers the models (comma-separated).
models = {models}
# The database. Empty: the one database the models are registered on. `--url` (or the
# url= argument of registers.db.migrations functions) overrides it.
url = {url}
# The project folder (imported from), relative to this file.
root = {root}
"""


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


# --- the alembic import ---------------------------------------------------------------


def _alembic() -> Any:
    try:
        import alembic
        import alembic.command
        import alembic.config
        import alembic.script
    except ImportError as exc:
        raise ConfigurationError(
            f"migrations need Alembic: pip install 'registers[migrations]' ({exc})"
        ) from exc
    return alembic


# --- models ---------------------------------------------------------------------------


def import_models(*modules: str, root: str | os.PathLike[str] | None = None) -> None:
    """Import the modules that register models, without creating any table.

    ``auto_create`` is skipped for every model registered during the import (see
    :func:`registers.db.schema.defer_creation`); a module imported before keeps what it did.

    Args:
        modules: Dotted module names (``"app.models"``); a comma-separated string works too.
        root: A folder put first on ``sys.path`` for the import (the project folder).

    Raises:
        ConfigurationError: no module was named, or one cannot be imported (the message
            names it and gives the error's last line).
    """
    names = [n.strip() for m in modules for n in m.split(",") if n.strip()]
    if not names:
        raise ConfigurationError("no models module given (for instance --models app.models)")
    if root is not None:
        folder = os.path.abspath(root)
        if folder not in sys.path:
            sys.path.insert(0, folder)
    for name in names:
        try:
            with defer_creation():
                importlib.import_module(name)
        except RegistryError as exc:
            raise ConfigurationError(f"models module {name!r} failed to import: {exc}") from exc
        except ImportError as exc:
            missing = getattr(exc, "name", None)
            if isinstance(exc, ModuleNotFoundError) and missing and name.startswith(missing):
                raise ConfigurationError(
                    f"cannot import models module {name!r}: no module named {missing!r} "
                    f"(run from the project folder, or check the name)"
                ) from exc
            raise ConfigurationError(
                f"models module {name!r} failed to import: {_last_line(exc)}"
            ) from exc
        except Exception as exc:
            raise ConfigurationError(
                f"models module {name!r} failed to import: {_last_line(exc)}"
            ) from exc


def _last_line(exc: BaseException) -> str:
    text = "".join(traceback.format_exception_only(type(exc), exc)).strip().splitlines()
    return text[-1] if text else type(exc).__name__


def _resolve_url(url: str | None) -> str:
    """The URL to migrate: the one given, else the only database the models use."""
    if url:
        try:
            full = normalize_url(url, "")
        except ValueError as exc:
            raise ConfigurationError(f"url: {exc}") from exc
        metadata_for(full)  # no model there: ConfigurationError naming the URLs that have
        return full
    urls = registered_urls()
    if not urls:
        raise ConfigurationError(
            "the models modules registered no model (is @database_registry applied?)"
        )
    if len(urls) > 1:
        raise ConfigurationError(
            f"the models are registered on {len(urls)} databases ({', '.join(urls)}): "
            "pass --url to say which one to migrate"
        )
    from registers.db.engine import _find_database

    db = _find_database(urls[0])
    # registered_urls hides passwords: connect with the URL as registered.
    return db.key if db is not None else urls[0]


# --- configuration --------------------------------------------------------------------


@dataclass
class _Settings:
    directory: Path
    models: list[str]
    url: str | None
    root: Path


def _read_settings(ini: Path) -> _Settings:
    parser = configparser.ConfigParser(defaults={"here": str(ini.parent)})
    try:
        parser.read(ini, encoding="utf-8")
    except configparser.Error as exc:
        raise ConfigurationError(f"{ini}: {_last_line(exc)}") from exc
    if not parser.has_section(_SECTION):
        raise ConfigurationError(
            f"{ini} has no [{_SECTION}] section: it was not written by `registers db init`"
        )
    section = parser[_SECTION]
    models = [m.strip() for m in section.get("models", "").split(",") if m.strip()]
    url = section.get("url", "").strip() or None
    root = (ini.parent / section.get("root", "..").strip()).resolve()
    return _Settings(ini.parent, models, url, root)


def _directory(directory: str | os.PathLike[str]) -> Path:
    folder = Path(directory).resolve()
    if not (folder / _INI).is_file():
        raise ConfigurationError(
            f"no migrations in {str(directory)!r} ({_INI} is missing): run "
            "`registers db init --models <module>` first, or pass --directory"
        )
    return folder


def _config(
    directory: str | os.PathLike[str],
    url: str | None,
    *,
    stdout: io.StringIO | None = None,
    output_buffer: io.StringIO | None = None,
    lock_timeout: float = LOCK_TIMEOUT,
    action: str = "",
) -> tuple[Config, _Settings]:
    alembic = _alembic()
    folder = _directory(directory)
    settings = _read_settings(folder / _INI)
    config = alembic.config.Config(
        str(folder / _INI),
        stdout=stdout if stdout is not None else io.StringIO(),
        output_buffer=output_buffer,
        cmd_opts=argparse.Namespace(quiet=True),
    )
    config.set_main_option("script_location", str(folder).replace("%", "%%"))
    config.attributes["registers.url"] = url
    config.attributes["registers.lock_timeout"] = lock_timeout
    config.attributes["registers.action"] = action
    return config, settings


def _script(config: Config) -> ScriptDirectory:
    alembic = _alembic()
    try:
        return alembic.script.ScriptDirectory.from_config(config)  # type: ignore[no-any-return]
    except alembic.util.CommandError as exc:
        raise ConfigurationError(str(exc)) from exc


def _one_head(script: ScriptDirectory) -> str | None:
    heads = script.get_heads()
    if len(heads) > 1:
        raise MigrationError(
            f"the migrations have {len(heads)} heads ({', '.join(sorted(heads))}): two scripts "
            "revise the same one; make one revise the other (its down_revision) or join them "
            "with `alembic merge heads`"
        )
    return heads[0] if heads else None


@contextlib.contextmanager
def _alembic_errors(action: str) -> Iterator[None]:
    """Alembic's and the database's exceptions as one-line registers errors."""
    alembic = _alembic()
    try:
        yield
    except RegistryError:
        raise
    except alembic.util.AutogenerateDiffsDetected:
        raise
    except alembic.util.CommandError as exc:
        raise MigrationError(f"cannot {action}: {_first_line(exc)}") from exc
    except sa.exc.SQLAlchemyError as exc:
        detail = _first_line(exc)
        if "already exists" in detail and action.startswith("upgrade"):
            detail += (" (created outside the migrations? models under migrations take "
                       "auto_create=False)")
        raise MigrationError(f"cannot {action}: {detail}") from exc


def _first_line(exc: BaseException) -> str:
    original = getattr(exc, "orig", None) or exc
    text = str(original).strip().splitlines()
    return text[0] if text else type(original).__name__


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
    applied: list[str] = config.attributes.setdefault("registers.applied", [])
    with _alembic_errors(f"upgrade to {revision}"):
        alembic.command.upgrade(config, revision)
    return list(applied)


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
    reverted: list[str] = config.attributes.setdefault("registers.applied", [])
    with _alembic_errors(f"downgrade to {revision}"):
        alembic.command.downgrade(config, revision)
    return list(reverted)


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
        extra = "postgres" if family == "postgresql" else "mysql"
        raise ConfigurationError(
            f"the driver for {sa.make_url(url).drivername!r} is not installed: "
            f"pip install 'registers[{extra}]' ({exc})"
        ) from exc
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
    if family == "sqlite":
        yield
        return
    digest = hashlib.sha1(f"registers-migrations:{database_identity(url)}".encode()).digest()
    deadline = time.monotonic() + timeout
    if family == "postgresql":
        key = int.from_bytes(digest[:8], "big", signed=True)
        while not connection.execute(sa.text("SELECT pg_try_advisory_lock(:k)"), {"k": key}
                                     ).scalar():
            connection.rollback()
            if time.monotonic() > deadline:
                raise MigrationError(_lock_message(url, timeout))
            time.sleep(0.2)
        connection.commit()
        try:
            yield
        finally:
            with contextlib.suppress(sa.exc.SQLAlchemyError):
                connection.rollback()
                connection.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                connection.commit()
        return
    if family == "mysql":
        name = "registers_migrations_" + digest.hex()[:32]
        got = connection.execute(
            sa.text("SELECT GET_LOCK(:n, :t)"), {"n": name, "t": max(int(timeout), 0)}
        ).scalar()
        connection.commit()
        if got != 1:
            raise MigrationError(_lock_message(url, timeout))
        try:
            yield
        finally:
            with contextlib.suppress(sa.exc.SQLAlchemyError):
                connection.rollback()
                connection.execute(sa.text("SELECT RELEASE_LOCK(:n)"), {"n": name})
                connection.commit()
        return
    yield  # other backends: no lock


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


# --- autogenerate ---------------------------------------------------------------------


def _process_revision_directives(context: Any, revision: Any, directives: list[Any]) -> None:
    if not directives:
        return
    script = directives[0]
    config = context.config
    action = config.attributes.get("registers.action", "") if config is not None else ""
    if action == "check":
        return
    if action == "revision" and not config.attributes.get("registers.empty", False) and all(
        ops.is_empty() for ops in script.upgrade_ops_list
    ):
        directives[:] = []
        return
    dialect = context.dialect
    for upgrade_ops in script.upgrade_ops_list:
        _add_back_fills(upgrade_ops, dialect, context.opts.get("target_metadata"))
    for ops_list in (script.upgrade_ops_list, script.downgrade_ops_list):
        for container in ops_list:
            _drops_first(container)


def _drops_first(container: Any) -> None:
    """In each table's changes: drop indexes and constraints, change columns, then create.

    Autogenerate lists column changes first; MariaDB then refuses to turn an indexed
    VARCHAR into LONGTEXT while the index is still there, or to index a LONGTEXT column
    before it became a VARCHAR.
    """
    from alembic.operations import ops

    for group in container.ops:
        if isinstance(group, ops.ModifyTableOps):
            drops: list[Any] = [op for op in group.ops
                                if isinstance(op, (ops.DropIndexOp, ops.DropConstraintOp))]
            creates: list[Any] = [op for op in group.ops
                                  if isinstance(op, (ops.CreateIndexOp, ops.AddConstraintOp))]
            columns: list[Any] = [op for op in group.ops
                                  if op not in drops and op not in creates]
            group.ops = drops + columns + creates


def _add_back_fills(upgrade_ops: Any, dialect: Any, metadata: Any) -> None:
    """Back-fills from the model's defaults.

    A new NOT NULL column whose field has a default is added with that DEFAULT, so the
    existing rows get the value, and the DEFAULT is dropped again in a step of its own (the
    table keeps matching the model; on SQLite a batch rebuild in between keeps it). A
    column becoming NOT NULL first gets the default in its NULL rows.
    """
    from alembic.operations import ops

    result: list[Any] = []
    quote = dialect.identifier_preparer.quote
    for group in upgrade_ops.ops:
        if not isinstance(group, ops.ModifyTableOps):
            result.append(group)
            continue
        for op in group.ops:
            # NULL -> NOT NULL: the rows still NULL get the field's default first.
            if (isinstance(op, ops.AlterColumnOp) and op.modify_nullable is False
                    and op.existing_nullable):
                column = metadata.tables[group.table_name].columns.get(op.column_name) \
                    if metadata is not None and group.table_name in metadata.tables else None
                literal = None if column is None else _default_literal(
                    metadata, group.table_name, column, dialect)
                if literal is not None:
                    name = quote(op.column_name)
                    result.append(ops.ExecuteSQLOp(
                        f"UPDATE {quote(group.table_name)} SET {name} = {literal} "
                        f"WHERE {name} IS NULL"
                    ))
        result.append(group)
        drops: list[Any] = []
        for index, op in enumerate(group.ops):
            if not isinstance(op, ops.AddColumnOp):
                continue
            column = op.column
            if column.nullable or column.server_default is not None:
                continue
            literal = _default_literal(metadata, group.table_name, column, dialect)
            if literal is None:
                continue
            filled = column._copy()
            filled.server_default = sa.DefaultClause(sa.text(literal))
            group.ops[index] = ops.AddColumnOp(op.table_name, filled, schema=op.schema)
            drops.append(
                ops.AlterColumnOp(
                    op.table_name,
                    column.name,
                    schema=op.schema,
                    existing_type=column.type,
                    existing_nullable=False,
                    existing_server_default=filled.server_default,
                    modify_server_default=None,
                )
            )
        if drops:
            result.append(ops.ModifyTableOps(group.table_name, drops, schema=group.schema))
    upgrade_ops.ops = result


_CHECK_COMPARATOR: list[Any] = []


def _install_check_comparator() -> None:
    """Teach autogenerate registers' CHECK constraints (Alembic compares none by default).

    Compared by name, for the names registers derives (``ck_<table>_<field>``): a CHECK
    declared in a model and missing in the database is added, one registers named that the
    model no longer declares is dropped. A changed condition under the same name is not
    seen (databases rewrite the SQL text): write that drop and create in the script. Runs
    only in environments configured by :func:`run_env`.
    """
    if _CHECK_COMPARATOR:
        return
    from alembic.autogenerate import comparators

    _CHECK_COMPARATOR.append(comparators.dispatch_for("table")(_compare_checks))


def _compare_checks(
    autogen_context: Any, modify_ops: Any, schema: Any, table_name: str,
    conn_table: Any, metadata_table: Any,
) -> None:
    from alembic.operations import ops

    context = autogen_context.migration_context
    if context is None or not context.opts.get("registers_compare_checks"):
        return
    if conn_table is None or metadata_table is None:  # new or dropped table: CREATE/DROP
        return
    declared = {
        c.name: c for c in metadata_table.constraints
        if isinstance(c, sa.CheckConstraint) and isinstance(c.name, str)
    }
    try:
        live = {
            c["name"]: c for c in autogen_context.inspector.get_check_constraints(
                table_name, schema=schema)
            if c.get("name")
        }
    except NotImplementedError:
        return
    for name in sorted(set(declared) - set(live)):
        modify_ops.ops.append(ops.AddConstraintOp.from_constraint(declared[name]))
    for name in sorted(set(live) - set(declared)):
        if not name.startswith("ck_"):
            continue  # not a name registers derives (MariaDB's JSON checks, the user's own)
        existing = sa.CheckConstraint(sa.text(live[name]["sqltext"]), name=name,
                                      table=conn_table)
        modify_ops.ops.append(ops.DropConstraintOp.from_constraint(existing))


def _default_literal(metadata: Any, table: str, column: Any, dialect: Any) -> str | None:
    """The model field's default as a SQL literal for ``dialect``, if it has a plain one."""
    from pydantic_core import PydanticUndefined

    manager = _manager_of(metadata, table)
    if manager is None:
        return None
    field = manager.model.model_fields.get(column.name)
    if field is None or field.default_factory is not None:
        return None
    value = field.default
    if value is PydanticUndefined or value is None:
        return None
    family = "mysql" if dialect.name in ("mysql", "mariadb") else dialect.name
    spec = next((c for c in manager.config.columns if c.name == column.name), None)
    codec = spec.to_db(family) if spec is not None else None
    try:
        stored = codec(value) if codec is not None else value
        if isinstance(stored, bool) and family != "postgresql":
            stored = int(stored)
        if not isinstance(stored, (str, int, float)) and type(stored).__name__ != "Decimal":
            return None
        expression = sa.literal(stored)
        return str(expression.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))
    except Exception:
        return None


def _manager_of(metadata: Any, table: str) -> Any:
    from pydantic import BaseModel

    from registers.db.registry import DatabaseRegistry

    target = metadata.tables.get(table) if metadata is not None else None
    best = None
    stack: list[type[Any]] = list(BaseModel.__subclasses__())
    while stack:
        cls = stack.pop()
        stack.extend(cls.__subclasses__())
        for value in list(vars(cls).values()):
            if not isinstance(value, DatabaseRegistry) or value.model is not cls:
                continue
            if value.table is target:
                return value
            if value.table_name == table:
                best = value
    return best


def _describe(diff: Any) -> str:
    """One autogenerate difference as a line (``add column items.unit``)."""
    if isinstance(diff, list):
        return "; ".join(_describe(d) for d in diff)
    kind = str(diff[0])
    words = kind.replace("_", " ")
    if kind in ("add_table", "remove_table"):
        return f"{words} {diff[1].name}"
    if kind in ("add_column", "remove_column"):
        return f"{words} {diff[2]}.{diff[3].name}"
    if kind.startswith("modify_"):
        table, column, old, new = diff[2], diff[3], diff[5], diff[6]
        return f"{words} {table}.{column}: {_show(old)} -> {_show(new)}"
    item = diff[1]
    table = getattr(getattr(item, "table", None), "name", None) or getattr(item, "name", "")
    name = getattr(item, "name", None)
    columns = ", ".join(c.name for c in getattr(item, "columns", ())) if hasattr(
        item, "columns") else ""
    label = f"{name} " if name else ""
    return f"{words} {label}on {table} ({columns})" if columns else f"{words} {label}{table}"


def _show(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, sa.types.TypeEngine):
        return repr(value)
    if hasattr(value, "arg"):
        return str(getattr(value.arg, "text", value.arg))
    return str(value)
