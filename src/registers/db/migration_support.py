"""What the ``registers db`` commands and the migration environment share: the files
``init`` writes, the lazy Alembic import, importing the models, reading the settings.
"""

from __future__ import annotations

import argparse
import configparser
import contextlib
import importlib
import io
import os
import sys
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from registers.db.engine import metadata_for, registered_urls
from registers.db.exceptions import ConfigurationError, MigrationError, RegistryError
from registers.db.schema import defer_creation
from registers.db.typing_utils import normalize_url

if TYPE_CHECKING:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

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
