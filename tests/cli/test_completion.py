"""C11: --completion bash|zsh|fish."""

from __future__ import annotations

import enum
import shutil
import subprocess
from pathlib import Path
from typing import Annotated, TextIO

import pytest

from registers.cli import CommandRegistry, File, Option


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


def _app() -> CommandRegistry:
    cli = CommandRegistry(prog="app")

    @cli.register(ops=["-g", "--greet"], description="Greet")
    def greet(
        name: str, color: Color = Color.RED, out: Path = Path("x"), loud: bool = False
    ) -> None: ...

    cli.group("deploy").register()(lambda: None)
    return cli


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_script_names_commands_aliases_options_and_choices(shell: str) -> None:
    result = _app().invoke(["--completion", shell])
    assert result.exit_code == 0
    for word in ("greet", "deploy", "color", "loud", "'red'", "'blue'"):
        assert word in result.stdout


def test_bad_shell_is_a_usage_error() -> None:
    result = _app().invoke(["--completion", "tcsh"])
    assert result.exit_code == 2
    assert "argument --completion: invalid choice: 'tcsh'" in result.stderr


@pytest.mark.skipif(shutil.which("bash") is None, reason="bash not installed")
@pytest.mark.parametrize(
    ("words", "expected"),
    [
        (["app", ""], {"greet", "deploy"}),
        (["app", "gr"], {"greet"}),
        (["app", "greet", "--c"], {"--color"}),
        (["app", "-g", "x", "--color", ""], {"red", "blue"}),
    ],
)
def test_bash_script_completes(words: list[str], expected: set[str]) -> None:
    script = _app().invoke(["--completion", "bash"]).stdout
    line = " ".join(f"'{w}'" for w in words)
    probe = (
        f"{script}\nCOMP_WORDS=({line}); COMP_CWORD={len(words) - 1}; "
        '_registers_app; printf "%s\\n" "${COMPREPLY[@]}"'
    )
    out = subprocess.run(["bash", "-c", probe], capture_output=True, text=True, check=True).stdout
    assert set(out.split()) == expected


def test_script_offers_short_names_root_options_and_yes_never_hidden_things() -> None:
    cli = CommandRegistry(prog="app")

    @cli.callback()
    def root(verbose: Annotated[int, Option("-v", count=True)] = 0) -> None: ...

    @cli.register(confirm="Sure?")
    def export(
        output: Annotated[Path, Option("-o", "--output")] = Path("x"),
        source: Annotated[TextIO | None, File("r"), Option("-s")] = None,
        secret_knob: Annotated[int, Option(hidden=True)] = 0,
    ) -> None: ...

    @cli.register(hidden=True)
    def internal_tool() -> None: ...

    script = cli.invoke(["--completion", "bash"]).stdout
    for word in ("'-o'", "'--output'", "'-s'", "'--yes'", "'-v'", "'--verbose'", "'export'"):
        assert word in script, word
    assert "secret-knob" not in script
    # the hidden command is followed when typed, but never offered as a word
    assert "'') _registers_reply=('export') ;;" in script
    assert "'export -s') _registers_files=1 ;;" in script  # File() completes paths
