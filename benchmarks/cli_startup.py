"""P1: start-up cost of a one-command registers app vs a hand-written argparse script.

Runs ``python app.py greet Alice`` for each variant as a fresh subprocess, alternating the
variants in each round (paired runs, so machine noise hits all of them alike), and prints
the median wall time of each and the ratio to hand-written argparse (target <= 1.25x).
Click and Typer are measured too when installed. Also checks that ``import registers.cli``
imports neither pydantic nor SQLAlchemy.

Usage::

    python benchmarks/cli_startup.py [--pairs 40]
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SCRIPTS = {
    "argparse": '''
import argparse

parser = argparse.ArgumentParser()
sub = parser.add_subparsers(dest="command")
greet = sub.add_parser("greet", aliases=["g"], help="Greet someone by name")
greet.add_argument("name")
args = parser.parse_args()
if args.command in ("greet", "g"):
    print(f"Hello, {args.name}!")
''',
    "registers": '''
from registers.cli import CommandRegistry

cli = CommandRegistry()


@cli.register(ops=["-g", "--greet"], description="Greet someone by name")
def greet(name: str) -> str:
    return f"Hello, {name}!"


cli.run()
''',
    "click": '''
import click


@click.group()
def cli():
    pass


@cli.command(help="Greet someone by name")
@click.argument("name")
def greet(name):
    click.echo(f"Hello, {name}!")


cli()
''',
    "typer": '''
import typer

app = typer.Typer()


@app.command()
def greet(name: str):
    print(f"Hello, {name}!")


@app.command()
def other():
    pass


app()
''',
}


def _available(name: str) -> bool:
    return name in ("argparse", "registers") or importlib.util.find_spec(name) is not None


def _time_once(script: Path) -> float:
    start = time.perf_counter()
    result = subprocess.run(
        [sys.executable, str(script), "greet", "Alice"], capture_output=True, text=True
    )
    elapsed = time.perf_counter() - start
    if result.returncode != 0 or result.stdout != "Hello, Alice!\n":
        raise SystemExit(f"{script.name} failed: {result.stdout!r} {result.stderr!r}")
    return elapsed


def _ensure_bytecode() -> None:
    """Compile registers like ``pip install`` does (PYTHONDONTWRITEBYTECODE would skip it).

    The standard library the argparse script uses is always precompiled; without this the
    comparison would time compiling registers' sources on every run.
    """
    import compileall

    spec = importlib.util.find_spec("registers")
    assert spec is not None and spec.origin is not None
    package = Path(spec.origin).parent
    compileall.compile_file(str(package / "__init__.py"), quiet=1)
    compileall.compile_dir(str(package / "cli"), quiet=1)


def _check_import_is_light() -> None:
    code = (
        "import sys, registers.cli\n"
        "print(','.join(m for m in ('pydantic', 'sqlalchemy') if m in sys.modules))"
    )
    heavy = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    if heavy:
        raise SystemExit(f"import registers.cli imported: {heavy}")
    print("import registers.cli imports neither pydantic nor sqlalchemy: ok")


def main() -> None:
    options = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    options.add_argument("--pairs", type=int, default=40, help="rounds of paired runs")
    pairs = options.parse_args().pairs
    _ensure_bytecode()
    _check_import_is_light()
    variants = [name for name in SCRIPTS if _available(name)]
    for name in SCRIPTS:
        if name not in variants:
            print(f"{name}: not installed, skipped")
    with tempfile.TemporaryDirectory() as tmp:
        paths = {}
        for name in variants:
            paths[name] = Path(tmp) / f"{name}_app.py"
            paths[name].write_text(SCRIPTS[name])
        for path in paths.values():  # warm up: byte-code caches, file system
            _time_once(path)
        times: dict[str, list[float]] = {name: [] for name in variants}
        for round_ in range(pairs):
            order = variants if round_ % 2 == 0 else variants[::-1]
            for name in order:
                times[name].append(_time_once(paths[name]))
    base = statistics.median(times["argparse"])
    print(f"{pairs} paired runs of `python app.py greet Alice` (median wall time)")
    for name in variants:
        median = statistics.median(times[name])
        print(f"  {name:<10} {median * 1000:7.2f} ms   {median / base:5.2f}x argparse")
    ratio = statistics.median(times["registers"]) / base
    verdict = "ok" if ratio <= 1.25 else "ABOVE TARGET"
    print(f"registers / argparse = {ratio:.3f} (target <= 1.25): {verdict}")


if __name__ == "__main__":
    main()
