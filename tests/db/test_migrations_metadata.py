"""metadata_for across spellings of one database, defer_creation, and the console's surface."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from pydantic import BaseModel

from registers.db import ConfigurationError, database_registry, get_engine, metadata_for
from registers.db.engine import database_identity
from registers.db.schema import creation_deferred, defer_creation

from ._project import REGISTERS


def _model(url: str, table: str, auto_create: bool = False) -> type[BaseModel]:
    @database_registry(url, table_name=table, auto_create=auto_create)
    class Thing(BaseModel):
        id: int | None = None
        name: str

    return Thing


# --- metadata_for ---------------------------------------------------------------------


def test_every_spelling_of_a_sqlite_file_gives_the_same_metadata(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    _model("spell.db", "things")
    metadata = metadata_for("spell.db")
    assert "things" in metadata.tables
    (tmp_path / "link.db").symlink_to(tmp_path / "spell.db")
    spellings = [
        "./spell.db", "sqlite:///spell.db", "sqlite:///./spell.db", str(tmp_path / "spell.db"),
        f"sqlite:///{tmp_path / 'spell.db'}", f"sqlite:///{tmp_path}/sub/../spell.db",
        "link.db",
    ]
    for spelling in spellings:
        assert metadata_for(spelling) is metadata, spelling


def test_models_registered_under_two_spellings_share_one_engine_and_metadata(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    _model("shared.db", "firsts")
    _model(f"sqlite:///{tmp_path / 'shared.db'}", "seconds")
    assert get_engine("./shared.db") is get_engine("shared.db")
    assert {"firsts", "seconds"} <= set(metadata_for("shared.db").tables)


@pytest.mark.parametrize(
    ("registered", "asked"),
    [
        ("postgresql+psycopg://app@127.0.0.1:5432/{db}", "postgresql://app@127.0.0.1/{db}"),
        ("postgresql+psycopg://app@127.0.0.1/{db}",
         "postgresql+psycopg2://admin:pw@127.0.0.1:5432/{db}"),
        ("postgresql+psycopg://app@LOCALHOST/{db}", "postgresql://localhost/{db}"),
        ("mysql+pymysql://root@127.0.0.1/{db}", "mysql://root@127.0.0.1:3306/{db}"),
        ("mysql+pymysql://root@127.0.0.1/{db}", "mariadb+pymysql://other@127.0.0.1/{db}"),
    ],
    ids=["pg-driver-port", "pg-user-password", "pg-host-case", "my-driver-port", "my-mariadb"],
)
def test_server_spellings_of_one_database_give_the_same_metadata(
    registered: str, asked: str
) -> None:
    db = f"nowhere_{uuid.uuid4().hex[:8]}"  # no connection is made: auto_create=False
    _model(registered.format(db=db), "things")
    assert "things" in metadata_for(asked.format(db=db)).tables


@pytest.mark.parametrize(
    "other",
    [
        "postgresql+psycopg://app@127.0.0.1:5433/{db}",  # another port
        "postgresql+psycopg://app@127.0.0.2/{db}",  # another host
        "postgresql+psycopg://app@127.0.0.1/{db}_2",  # another database
        "postgresql+psycopg://app@127.0.0.1/{db}?options=-csearch_path%3Dother",  # schema
        "mysql+pymysql://app@127.0.0.1/{db}",  # another server kind
    ],
    ids=["port", "host", "database", "search-path", "server-kind"],
)
def test_another_database_is_a_configuration_error_naming_the_registered_urls(
    other: str,
) -> None:
    db = f"nowhere_{uuid.uuid4().hex[:8]}"
    _model(f"postgresql+psycopg://app:s3cret@127.0.0.1/{db}", "things")
    with pytest.raises(ConfigurationError) as info:
        metadata_for(other.format(db=db))
    message = str(info.value)
    assert message.startswith("no model is registered for ")
    assert f"postgresql+psycopg://app:***@127.0.0.1/{db}" in message
    assert "s3cret" not in message and "\n" not in message


def test_memory_databases_are_only_themselves() -> None:
    assert database_identity("sqlite://") == "sqlite://"
    assert database_identity("sqlite:///:memory:") != database_identity("sqlite://")
    assert database_identity("sqlite:///file:x?mode=memory&uri=true") != database_identity(
        "sqlite:///x")


def test_metadata_for_a_bad_url_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError):
        metadata_for("   ")


# --- defer_creation: why importing models in env.py used to create the tables ----------


def test_auto_create_creates_the_table_at_decoration(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'created.db'}"
    _model(url, "things", auto_create=True)
    assert get_engine(url).dialect.has_table(get_engine(url).connect(), "things")


def test_inside_defer_creation_no_table_is_created(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'deferred.db'}"
    assert not creation_deferred()
    with defer_creation():
        assert creation_deferred()
        _model(url, "things", auto_create=True)
    assert not creation_deferred()
    assert "things" in metadata_for(url).tables
    assert not (tmp_path / "deferred.db").exists() or not get_engine(url).dialect.has_table(
        get_engine(url).connect(), "things")


def test_defer_creation_is_reset_after_an_error() -> None:
    with pytest.raises(RuntimeError), defer_creation():
        raise RuntimeError("boom")
    assert not creation_deferred()


# --- the console script's surface -----------------------------------------------------


def _console(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(REGISTERS), *args], capture_output=True, text=True, timeout=60)


COMMANDS = ["init", "revision", "upgrade", "downgrade", "current", "history", "check", "sql"]


def test_registers_help_lists_the_db_commands() -> None:
    root = _console("--help")
    assert root.returncode == 0 and "db " in root.stdout
    group = _console("db", "--help")
    assert group.returncode == 0
    for command in COMMANDS:
        assert f"  {command} " in group.stdout, command
    init = _console("db", "init", "--help")
    assert "--models" in init.stdout and "--url" in init.stdout and "--directory" in init.stdout


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_knows_the_db_commands_and_their_options(shell: str) -> None:
    done = _console("--completion", shell)
    assert done.returncode == 0
    options = ["models", "message", "revision", "start", "url", "directory"]
    for word in ["db", *COMMANDS]:
        assert word in done.stdout, (shell, word)
    for option in options:  # fish scripts may spell an option `-l name` or `--name`
        assert f"--{option}" in done.stdout or f"-l {option}" in done.stdout, (shell, option)


def test_version() -> None:
    import registers

    assert _console("--version").stdout.strip() == f"registers {registers.__version__}"


def test_unknown_db_command_suggests_and_exits_2() -> None:
    done = _console("db", "upgrad")
    assert done.returncode == 2 and "upgrade" in done.stderr


def test_console_start_up_imports_no_heavy_module() -> None:
    code = (
        "import sys, registers, registers.cli, registers.__main__\n"
        "heavy = ('alembic', 'pydantic', 'sqlalchemy', 'registers.db', 'typing')\n"
        "print(sorted(m for m in heavy if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}, check=True)
    assert done.stdout.strip() == "[]"


def test_registers_db_import_does_not_import_alembic() -> None:
    code = "import sys, registers.db; print('alembic' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    assert done.stdout.strip() == "False"
