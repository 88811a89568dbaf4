"""P1 and §0: import registers.cli stays light; the original module layout is importable."""

from __future__ import annotations

import importlib
import subprocess
import sys
from typing import Any

import pytest

HEAVY = ["pydantic", "sqlalchemy", "asyncio", "inspect", "typing", "json", "logging", "difflib"]


def test_import_registers_cli_imports_nothing_heavy() -> None:
    code = (
        "import sys, registers, registers.cli\n"
        f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == ""


def test_running_a_simple_command_imports_nothing_heavy(tmp_path: pytest.TempPathFactory) -> None:
    code = (
        "import sys\n"
        "from registers.cli import CommandRegistry\n"
        "cli = CommandRegistry(prog='app')\n"
        "@cli.register(ops=['-g'])\n"
        "def greet(name: str) -> str:\n"
        "    return 'Hello, ' + name\n"
        "cli.run(['-g', 'Ann'])\n"
        "print(sorted(m for m in ('pydantic', 'sqlalchemy', 'asyncio', 'inspect', 'typing')"
        " if m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out == "Hello, Ann\n[]\n"


@pytest.mark.parametrize(
    ("module", "names"),
    [
        ("registers.cli.registry", ["CommandRegistry", "CommandEntry"]),
        ("registers.cli.container", ["DIContainer"]),
        ("registers.cli.dispatcher", ["Dispatcher"]),
        ("registers.cli.exceptions", ["FrameworkError", "DuplicateCommandError",
                                      "UnknownCommandError", "DependencyNotFoundError",
                                      "PluginLoadError"]),
        ("registers.cli.middleware", ["MiddlewareChain", "logging_middleware_pre",
                                      "logging_middleware_post"]),
        ("registers.cli.parser", ["build_parser"]),
        ("registers.cli.plugins", ["load_plugins"]),
        ("registers.cli.utils.reflection", ["get_params"]),
        ("registers.cli.utils.typing", ["resolve_argparse_type", "is_optional", "is_bool_flag"]),
    ],
)
def test_original_module_layout(module: str, names: list[str]) -> None:
    imported = importlib.import_module(module)
    for name in names:
        assert hasattr(imported, name), f"{module}.{name}"


def test_public_names() -> None:
    import registers.cli

    assert sorted(registers.cli.__all__) == sorted(
        [
            "CommandRegistry", "DIContainer", "Dispatcher", "MiddlewareChain", "build_parser",
            "load_plugins", "logging_middleware_pre", "logging_middleware_post",
            "FrameworkError", "DuplicateCommandError", "UnknownCommandError",
            "DependencyNotFoundError", "PluginLoadError",
            # issue 18: annotation metadata next to Env, and the progress display
            "Env", "Option", "Prompt", "File", "progress", "Progress",
        ]
    )


def test_exceptions_share_a_base_and_know_their_exit_code() -> None:
    from registers.cli import exceptions as e

    for cls in (e.DuplicateCommandError, e.UnknownCommandError, e.DependencyNotFoundError,
                e.PluginLoadError):
        assert issubclass(cls, e.FrameworkError)
    assert e.UnknownCommandError("x").exit_code == 2
    assert e.FrameworkError("x").exit_code == 1


def test_help_of_a_cli_with_models_neither_connects_nor_creates_files(tmp_path: Any) -> None:
    """Decorating a model does not connect: ``app --help`` works with the server down and
    leaves no SQLite file behind; the first command that uses the model creates its table."""
    db = tmp_path / "app.db"
    app = tmp_path / "app.py"
    app.write_text(
        "from pydantic import BaseModel\n"
        "from registers.cli import CommandRegistry\n"
        "from registers.db import database_registry\n"
        f"@database_registry('sqlite:///{db}', table_name='notes')\n"
        "class Note(BaseModel):\n"
        "    id: int | None = None\n"
        "    text: str\n"
        "@database_registry('postgresql+psycopg://nobody@127.0.0.1:1/down', table_name='x')\n"
        "class Remote(BaseModel):\n"
        "    id: int | None = None\n"
        "cli = CommandRegistry(prog='app')\n"
        "@cli.register\n"
        "def add(text: str) -> str:\n"
        "    return str(Note.objects.create(text=text).id)\n"
        "cli.run()\n"
    )
    shown = subprocess.run([sys.executable, str(app), "--help"], capture_output=True,
                           text=True, timeout=120)
    assert shown.returncode == 0, shown.stderr
    assert "add" in shown.stdout
    assert not db.exists()
    added = subprocess.run([sys.executable, str(app), "add", "hello"],
                           capture_output=True, text=True, timeout=120)
    assert (added.returncode, added.stdout.strip()) == (0, "1"), added.stderr
    assert db.exists()
