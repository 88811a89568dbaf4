"""C13: registers.cli.progress() off a terminal, and colour by NO_COLOR / FORCE_COLOR."""

from __future__ import annotations

import io
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from registers.cli import CommandRegistry, progress
from registers.cli.terminal import colour_enabled


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_yields_every_item_and_writes_plain_lines_off_a_terminal() -> None:
    out = io.StringIO()
    assert list(progress(range(8), label="Copying", file=out)) == list(range(8))
    assert out.getvalue().splitlines() == [
        "Copying: 0/8", "Copying: 25%, 2/8", "Copying: 50%, 4/8", "Copying: 75%, 6/8",
        "Copying: done, 8/8",
    ]


def test_progress_of_unknown_length_writes_start_and_end_only() -> None:
    out = io.StringIO()

    def items() -> Iterator[int]:
        yield from range(1000)

    assert sum(progress(items(), file=out)) == 499500
    assert out.getvalue() == "0\ndone, 1000\n"


def test_progress_of_nothing() -> None:
    out = io.StringIO()
    assert list(progress([], label="x", file=out)) == []
    assert out.getvalue() == "x: 0/0\nx: done, 0/0\n"


def test_progress_on_a_terminal_redraws_in_place() -> None:
    out = _Tty()
    list(progress(range(4), label="Go", file=out))
    text = out.getvalue()
    assert text.startswith("\rGo [------------------------------]   0%  0/4")
    assert "\rGo [##############################] 100%  4/4\n" in text
    assert "\n" not in text[:-1]  # one line, redrawn


def test_progress_manual_advance_and_length() -> None:
    out = io.StringIO()
    with progress(length=4, label="Jobs", file=out) as bar:
        bar.advance(2)
        bar.advance(2)
    assert out.getvalue().splitlines()[-1] == "Jobs: done, 4/4"
    assert bar.done == 4


def test_a_failing_loop_does_not_claim_done() -> None:
    out = io.StringIO()
    with pytest.raises(RuntimeError):
        for item in progress(range(10), label="x", file=out):
            if item == 5:
                raise RuntimeError
    assert "done" not in out.getvalue()


def test_progress_rejects_a_negative_length_and_advance_without_iterable() -> None:
    with pytest.raises(ValueError, match="length must be >= 0"):
        progress(length=-1)
    with pytest.raises(TypeError, match="no iterable"):
        list(progress(length=3))


def test_progress_goes_to_stderr_never_stdout(tmp_path: Path) -> None:
    script = tmp_path / "app.py"
    script.write_text(
        "from registers.cli import CommandRegistry, progress\n"
        "cli = CommandRegistry(prog='app')\n"
        "@cli.register()\n"
        "def export(n: int) -> None:\n"
        "    for i in progress(range(n), label='Exporting'):\n"
        "        print(i)\n"
        "cli.run()\n"
    )
    result = subprocess.run([sys.executable, str(script), "export", "4"], capture_output=True,
                            text=True, timeout=60)
    assert result.stdout == "0\n1\n2\n3\n"
    assert result.stderr.splitlines()[0] == "Exporting: 0/4"
    assert result.stderr.splitlines()[-1] == "Exporting: done, 4/4"


def test_a_closed_stderr_never_stops_the_work() -> None:
    out = io.StringIO()
    out.close()
    assert sum(progress(range(5), file=out)) == 10


# -- colour ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("env", "tty", "expected"), [
    ({}, False, False),
    ({}, True, True),
    ({"NO_COLOR": "1"}, True, False),
    ({"NO_COLOR": ""}, True, True),  # an empty NO_COLOR does not count (no-color.org)
    ({"FORCE_COLOR": "1"}, False, True),
    ({"FORCE_COLOR": "1", "NO_COLOR": "1"}, True, False),  # NO_COLOR wins, as in CPython
    ({"TERM": "dumb"}, True, False),
    ({"TERM": "dumb", "FORCE_COLOR": "1"}, False, True),
])
def test_colour_follows_no_color_and_force_color(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], tty: bool, expected: bool
) -> None:
    for name in ("NO_COLOR", "FORCE_COLOR", "TERM"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert colour_enabled(_Tty() if tty else io.StringIO()) is expected


def _app() -> CommandRegistry:
    cli = CommandRegistry(prog="app")

    @cli.register()
    def add(a: int) -> int:
        return a

    return cli


def test_tests_run_without_colour(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FORCE_COLOR", raising=False)
    bad = _app().invoke("add x")
    assert bad.stderr == ("app add: error: argument a: invalid int value: 'x'\n"
                          "Try 'app add --help' for help.\n")
    assert "\x1b[" not in _app().invoke("--help").stdout


def test_force_color_colours_help_usage_errors_and_framework_errors(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("FORCE_COLOR", "1")
    cli = _app()
    assert cli.invoke("add x").stderr == (
        "app add: \x1b[31;1merror:\x1b[0m argument a: invalid int value: 'x'\n"
        "Try 'app add --help' for help.\n")
    assert cli.invoke("--help").stdout.startswith("\x1b[1musage:\x1b[0m app")
    assert "\x1b[1mcommands:\x1b[0m" in cli.invoke("--help").stdout
    assert cli.invoke("ad").stderr == (
        "\x1b[31mUnknown command 'ad'. Did you mean 'add'?\x1b[0m\nTry 'app --help' for help.\n")
