"""Every code block of README.md runs as written (the two set-up commands via .ci/run)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[2] / "README.md"


def _blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README.read_text(), re.S)


def _run(tmp_path: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "app.py", *argv], cwd=tmp_path, capture_output=True, text=True,
        timeout=60,
    )


@pytest.fixture
def app(tmp_path: Path) -> Path:
    (tmp_path / "app.py").write_text(_blocks("python")[0])
    return tmp_path


@pytest.mark.parametrize(
    ("argv", "stdout"),
    [
        (["greet", "Ada", "--times", "2"], "Hello, Ada! Hello, Ada!\n"),
        (["-g", "Ada", "--shout"], "HELLO, ADA!\n"),
        (["g", "Ada"], "Hello, Ada!\n"),
    ],
)
def test_readme_cli_example_answers_every_spelling(app: Path, argv: list[str], stdout: str) -> None:
    result = _run(app, *argv)
    assert (result.returncode, result.stdout, result.stderr) == (0, stdout, "")


def test_readme_cli_example_suggests_the_close_command(app: Path) -> None:
    result = _run(app, "gret", "Ada")
    assert result.returncode == 2
    assert result.stderr == (
        "Unknown command 'gret'. Did you mean 'greet'?\nTry 'app --help' for help.\n"
    )


def test_readme_cli_example_rejects_a_bad_value_in_one_line(app: Path) -> None:
    result = _run(app, "greet", "Ada", "--times", "x")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "app greet: error: argument --times: invalid int value: 'x'",
        "Try 'app greet --help' for help.",
    ]


def test_readme_db_example_runs_and_persists(tmp_path: Path) -> None:
    script = _blocks("python")[1] + (
        "\nrows = [(u.name, u.email, u.role) for u in User.objects.all()]\n"
        "assert rows == [('Ada L.', 'ada@example.com', 'active'),"
        " ('Grace', 'grace@example.com', 'trial')], rows\n"
        "assert [u.name for u in trial] == ['Ada L.']\n"
    )
    (tmp_path / "db.py").write_text(script)
    result = subprocess.run(
        [sys.executable, "db.py"], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "app.db").exists()


def test_readme_keeps_exactly_two_setup_commands() -> None:
    sections = re.split(r"^## ", README.read_text(), flags=re.M)
    firsts = {
        s.splitlines()[0]: _first_bash(s) for s in sections if s.startswith(("Quick", "Running"))
    }
    assert set(firsts) == {"Quick start", "Running the tests"}
    assert "pip install ." in firsts["Quick start"]
    assert "examples/tasks.py" in firsts["Quick start"]
    assert 'pip install -e ".[dev]"' in firsts["Running the tests"]
    assert "pytest" in firsts["Running the tests"]


def _first_bash(section: str) -> str:
    found = re.search(r"```bash\n(.*?)```", section, re.S)
    assert found, section[:80]
    return found.group(1).strip()
