"""C11: --completion bash|zsh|fish."""

from __future__ import annotations

import enum
import shutil
import subprocess
from pathlib import Path

import pytest

from registers.cli import CommandRegistry


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
