"""C7: load_plugins: discovery order, recursion, owned registries, failures."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from registers.cli import CommandRegistry, PluginLoadError, load_plugins

APP = "from registers.cli import CommandRegistry\ncli = CommandRegistry(prog='app')\n"


@pytest.fixture
def make_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., str]]:
    """Write a package from {relative path: source}; returns its unique top-level name."""
    counter = iter(range(1000))
    names: list[str] = []
    monkeypatch.syspath_prepend(str(tmp_path))

    def make(files: dict[str, str]) -> str:
        name = f"plugpkg{next(counter)}_{id(tmp_path) % 10000}"
        names.append(name)
        for relative, source in {"__init__.py": "", **files}.items():
            path = tmp_path / name / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(textwrap.dedent(source))
        return name

    yield make
    for module in [m for m in sys.modules if any(m.split(".")[0] == n for n in names)]:
        del sys.modules[module]


def _app_module(make_package: Callable[..., str]) -> tuple[str, CommandRegistry]:
    name = make_package({"app.py": APP})
    module = __import__(f"{name}.app", fromlist=["cli"])
    return name, module.cli


def test_imports_every_public_module_sorted_and_recursively(
    make_package: Callable[..., str],
) -> None:
    name, cli = _app_module(make_package)
    register = f"from {name}.app import cli\n@cli.register()\ndef {{}}() -> str:\n    return 'x'\n"
    files = {
        "commands/__init__.py": "",
        "commands/users.py": register.format("create_user"),
        "commands/reports.py": register.format("export"),
        "commands/_private.py": "raise RuntimeError('never imported')\n",
        "commands/ops/__init__.py": "",
        "commands/ops/deploy.py": register.format("deploy"),
    }
    for relative, source in files.items():
        path = Path(sys.modules[name].__path__[0]) / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source)
    modules = load_plugins(f"{name}.commands", cli)
    assert [m.__name__.split(".", 1)[1] for m in modules] == [
        "commands.ops",
        "commands.ops.deploy",
        "commands.reports",
        "commands.users",
    ]
    assert set(cli.all()) == {"create-user", "export", "deploy"}


def test_module_level_registry_is_merged(make_package: Callable[..., str]) -> None:
    name = make_package(
        {
            "plugins/__init__.py": "",
            "plugins/tools.py": """
                from registers.cli import CommandRegistry
                commands = CommandRegistry()

                @commands.register(ops=["-t"])
                def tool() -> str:
                    return "tool ran"
            """,
        }
    )
    cli = CommandRegistry(prog="app")
    load_plugins(f"{name}.plugins", cli)
    assert cli.invoke(["-t"]).stdout == "tool ran\n"


def test_missing_package_raises_plugin_load_error(make_package: Callable[..., str]) -> None:
    with pytest.raises(PluginLoadError) as caught:
        load_plugins("no_such_package_xyz.commands", CommandRegistry())
    assert "no_such_package_xyz.commands" in str(caught.value)
    assert isinstance(caught.value.__cause__, ModuleNotFoundError)


@pytest.mark.parametrize(
    ("source", "error"),
    [
        ("import no_such_dependency_xyz\n", ModuleNotFoundError),
        ("from os import no_such_name\n", ImportError),
        ("raise RuntimeError('broken plugin')\n", RuntimeError),
        ("1/0\n", ZeroDivisionError),
        ("def broken(:\n", SyntaxError),
    ],
)
def test_failing_module_raises_plugin_load_error_naming_it(
    make_package: Callable[..., str], source: str, error: type[BaseException]
) -> None:
    name = make_package({"commands/__init__.py": "", "commands/bad.py": source})
    with pytest.raises(PluginLoadError) as caught:
        load_plugins(f"{name}.commands", CommandRegistry())
    assert caught.value.module == f"{name}.commands.bad"
    assert f"'{name}.commands.bad'" in str(caught.value)
    assert isinstance(caught.value.__cause__, error)


def test_collision_in_plugin_raises_plugin_load_error(make_package: Callable[..., str]) -> None:
    name = make_package(
        {
            "plugins/__init__.py": "",
            "plugins/a.py": """
                from registers.cli import CommandRegistry
                commands = CommandRegistry()
                commands.register("sync")(lambda: None)
            """,
        }
    )
    cli = CommandRegistry()
    cli.register("sync")(lambda: None)
    with pytest.raises(PluginLoadError, match=r"plugins\.a"):
        load_plugins(f"{name}.plugins", cli)


def test_plugin_groups_are_not_copied_to_the_top_level(make_package: Callable[..., str]) -> None:
    owned = """
        from registers.cli import CommandRegistry
        commands = CommandRegistry()
        {group} = commands.group("{group}")

        @{group}.register()
        def list() -> str:
            return "{group} list"
    """
    name = make_package({
        "plugins/__init__.py": "",
        "plugins/users.py": owned.format(group="users"),
        "plugins/teams.py": owned.format(group="teams"),
    })
    cli = CommandRegistry(prog="app")
    load_plugins(f"{name}.plugins", cli)
    assert sorted(cli.all()) == ["teams list", "users list"]
    assert not cli.commands
    assert cli.invoke(["users", "list"]).stdout == "users list\n"
    assert cli.invoke(["teams", "list"]).stdout == "teams list\n"


def test_plugin_holding_only_a_group_merges_its_root(make_package: Callable[..., str]) -> None:
    name = make_package({
        "plugins/__init__.py": "",
        "plugins/ops.py": """
            from registers.cli import CommandRegistry
            ops = CommandRegistry().group("ops")

            @ops.register()
            def restart() -> str:
                return "restarted"
        """,
    })
    cli = CommandRegistry(prog="app")
    load_plugins(f"{name}.plugins", cli)
    assert list(cli.all()) == ["ops restart"]
