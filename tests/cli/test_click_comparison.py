"""The Click/Typer comparison table of docs/cli.md, checked against real Click and Typer.

The same small program is written three times (registers, Click, Typer); every case of the
table runs each of them as a subprocess, and the status and outcome the table shows must be
what happens. Click and Typer come with the ``bench`` extra; without them this is skipped.
``python tests/cli/test_click_comparison.py`` prints the table.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[2] / "docs" / "cli.md"
LONG = "Add a task to the list. " * 10

REGISTERS = textwrap.dedent(
    f'''
    from typing import Annotated
    from pydantic import BaseModel
    from registers.cli import CommandRegistry
    from registers.cli.env import Env

    cli = CommandRegistry(prog="app")


    class Task(BaseModel):
        size: int


    @cli.register(name="list")
    def list_() -> None:
        for i in range(100000):
            print(i)


    @cli.register()
    def add(title: str, tag: list[str] = [], point: tuple[int, int] = (0, 0),
            verbose: bool = False) -> str:
        """{LONG}"""
        return f"title={{title}} tag={{tag}} point={{list(point)}}"


    @cli.register()
    def files(names: list[str], force: bool = False) -> str:
        return f"names={{names}} force={{force}}"


    @cli.register()
    def move(y: float = 0.0) -> str:
        return f"y={{y}}"


    @cli.register()
    def check() -> None:
        Task(size="big")


    @cli.register()
    def env(tags: Annotated[list[str], Env("APP_TAGS")] = [],
            debug: Annotated[bool, Env("APP_DEBUG")] = False,
            level: Annotated[int, Env("APP_LEVEL")] = 0) -> str:
        return f"tags={{tags}} debug={{debug}} level={{level}}"


    @cli.register()
    def run(command: str) -> str:
        return f"command={{command}}"


    cli.run()
    '''
)

CLICK = textwrap.dedent(
    f'''
    import click
    from pydantic import BaseModel


    class Task(BaseModel):
        size: int


    @click.group()
    def cli():
        pass


    @cli.command(name="list")
    def list_():
        for i in range(100000):
            click.echo(i)


    @cli.command(help="{LONG}")
    @click.argument("title")
    @click.option("--tag", multiple=True)
    @click.option("--point", nargs=2, type=int, default=(0, 0))
    @click.option("--verbose", is_flag=True)
    def add(title, tag, point, verbose):
        click.echo(f"title={{title}} tag={{list(tag)}} point={{list(point)}}")


    @cli.command()
    @click.argument("names", nargs=-1, required=True)
    @click.option("--force", is_flag=True)
    def files(names, force):
        click.echo(f"names={{list(names)}} force={{force}}")


    @cli.command()
    @click.option("--y", type=float, default=0.0)
    def move(y):
        click.echo(f"y={{y}}")


    @cli.command()
    def check():
        Task(size="big")


    @cli.command()
    @click.option("--tags", multiple=True, envvar="APP_TAGS")
    @click.option("--debug", type=bool, default=False, envvar="APP_DEBUG")
    @click.option("--level", type=int, default=0, envvar="APP_LEVEL")
    def env(tags, debug, level):
        click.echo(f"tags={{list(tags)}} debug={{debug}} level={{level}}")


    @cli.command()
    @click.argument("command")
    def run(command):
        click.echo(f"command={{command}}")


    cli(prog_name="app")
    '''
)

TYPER = textwrap.dedent(
    f'''
    from typing import Annotated
    import typer
    from pydantic import BaseModel

    app = typer.Typer(pretty_exceptions_enable=False, rich_markup_mode=None)


    class Task(BaseModel):
        size: int


    @app.command(name="list")
    def list_():
        for i in range(100000):
            print(i)


    @app.command(help="{LONG}")
    def add(title: str, tag: list[str] = [], point: tuple[int, int] = (0, 0),
            verbose: bool = False):
        print(f"title={{title}} tag={{tag}} point={{list(point)}}")


    @app.command()
    def files(names: list[str], force: bool = False):
        print(f"names={{names}} force={{force}}")


    @app.command()
    def move(y: float = 0.0):
        print(f"y={{y}}")


    @app.command()
    def check():
        Task(size="big")


    @app.command()
    def env(tags: Annotated[list[str], typer.Option(envvar="APP_TAGS")] = [],
            debug: Annotated[bool, typer.Option(envvar="APP_DEBUG")] = False,
            level: Annotated[int, typer.Option(envvar="APP_LEVEL")] = 0):
        print(f"tags={{tags}} debug={{debug}} level={{level}}")


    @app.command()
    def run(command: str):
        print(f"command={{command}}")


    app(prog_name="app")
    '''
)

SOURCES = {"registers": REGISTERS, "click": CLICK, "typer": TYPER}


@dataclass(frozen=True)
class Case:
    key: str  # the first cell of the table row
    argv: tuple[str, ...]
    stdout_to: str = ""  # "pipe-closed" or "/dev/full"
    env: tuple[tuple[str, str], ...] = ()


CASES = [
    Case("`app list \\| head -1`", ("list",), stdout_to="pipe-closed"),
    Case("`app list > /dev/full`", ("list",), stdout_to="/dev/full"),
    Case("`add --tag docs \"Write the docs\"`", ("add", "--tag", "docs", "Write the docs")),
    Case("`add T --point 1 2 --point 3 4`", ("add", "T", "--point", "1", "2", "--point", "3", "4")),
    Case("`files a --force b`", ("files", "a", "--force", "b")),
    Case("`add T --verb` (a prefix)", ("add", "T", "--verb")),
    Case("`move --y -1.5e3`", ("move", "--y", "-1.5e3")),
    Case("`add T --tag -x` (a value starting with `-`)", ("add", "T", "--tag", "-x")),
    Case("`add T --tag --verbose`", ("add", "T", "--tag", "--verbose")),
    Case("`add T --verbsoe` (a typo)", ("add", "T", "--verbsoe")),
    Case("`check` (handler raises pydantic `ValidationError`)", ("check",)),
    Case("`APP_TAGS=\"a b\" app env`", ("env",), env=(("APP_TAGS", "a b"),)),
    Case("`APP_DEBUG=ture app env`", ("env",), env=(("APP_DEBUG", "ture"),)),
    Case("`APP_LEVEL= app env` (empty)", ("env",), env=(("APP_LEVEL", ""),)),
    Case("`APP_LEVEL=x app env`", ("env",), env=(("APP_LEVEL", "x"),)),
    Case("`run ls` (a parameter named `command`)", ("run", "ls")),
    Case("`add --help`, 80 columns", ("add", "--help")),
]


def _outcome(script: Path, case: Case) -> str:
    """``"<status>, <what happened>"`` as the table states it."""
    env = {**os.environ, **dict(case.env), "COLUMNS": "80", "NO_COLOR": "1",
           "TERM": "dumb", "_TYPER_STANDARD_TRACEBACK": "1"}
    env.pop("FORCE_COLOR", None)
    argv = [sys.executable, str(script), *case.argv]
    if case.stdout_to == "pipe-closed":
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        assert proc.stdout is not None and proc.stderr is not None
        proc.stdout.readline()
        proc.stdout.close()
        err = proc.stderr.read().decode()
        status, out = proc.wait(timeout=60), ""
    elif case.stdout_to == "/dev/full":
        with open("/dev/full", "w") as full:
            done = subprocess.run(argv, stdout=full, stderr=subprocess.PIPE, text=True,
                                  env=env, timeout=60)
        status, out, err = done.returncode, "", done.stderr
    else:
        done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=60)
        status, out, err = done.returncode, done.stdout, done.stderr
    return f"{status}, {_describe(case, out, err)}"


def _describe(case: Case, out: str, err: str) -> str:
    if "Traceback" in err:
        return "traceback"
    if case.argv[-1] == "--help":
        widest = max(len(line) for line in out.splitlines())
        return f"widest line {widest}"
    if not err.strip():
        return f"`{out.strip()}`" if out.strip() else "silent"
    lines = [ln.strip(" │╭╰─") for ln in err.splitlines()]
    lines = [ln for ln in lines if ln and not ln.startswith(("Usage:", "usage:"))]
    text = " / ".join(lines)
    return "\"" + re.sub(r"\s+", " ", text).replace("|", "\\|") + "\""


def outcomes(tmp: Path) -> dict[str, dict[str, str]]:
    table: dict[str, dict[str, str]] = {}
    for tool, source in SOURCES.items():
        script = tmp / f"{tool}_app.py"
        script.write_text(source)
        for case in CASES:
            table.setdefault(case.key, {})[tool] = _outcome(script, case)
    return table


def render(table: dict[str, dict[str, str]]) -> str:
    lines = ["| case | registers | Click | Typer |", "|---|---|---|---|"]
    for key, cells in table.items():
        lines.append(f"| {key} | {cells['registers']} | {cells['click']} | {cells['typer']} |")
    return "\n".join(lines)


def _documented() -> dict[str, list[str]]:
    rows: dict[str, list[str]] = {}
    text = DOC.read_text()
    start = text.index("<!-- comparison table start -->")
    end = text.index("<!-- comparison table end -->")
    for line in text[start:end].splitlines():
        if not line.startswith("| `"):
            continue
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip().strip("|"))]
        rows[cells[0]] = cells[1:]
    return rows


def test_docs_table_is_what_registers_click_and_typer_do(tmp_path: Path) -> None:
    pytest.importorskip("click")
    pytest.importorskip("typer")
    observed = outcomes(tmp_path)
    documented = _documented()
    assert list(documented) == [case.key for case in CASES]
    for key, cells in observed.items():
        assert documented[key] == [cells["registers"], cells["click"], cells["typer"]], key


if __name__ == "__main__":
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        print(render(outcomes(Path(tmp))))
