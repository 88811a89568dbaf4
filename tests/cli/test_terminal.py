"""C13 on a real terminal: prompts, hidden input, confirmation, colour and progress, each
driven through a pseudo-terminal (``pty``) around a fresh ``python app.py`` process."""

from __future__ import annotations

import os
import select
import signal
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

pty = pytest.importorskip("pty")

APP = '''
import sys
from typing import Annotated
from registers.cli import CommandRegistry, Prompt, progress

cli = CommandRegistry(prog="app")


@cli.register(confirm="Proceed?")
def login(
    user: Annotated[str, Prompt("User")],
    password: Annotated[str, Prompt("Password", hide_input=True, confirm=True)],
) -> str:
    return f"user={user} password-length={len(password)}"


@cli.register()
def count(n: int) -> str:
    total = 0
    for i in progress(range(n), label="Counting"):
        total += i
    return f"total={total}"


cli.run()
'''


_SESSIONS: list[Session] = []


@pytest.fixture(autouse=True)
def _end_leftover_children() -> Iterator[None]:
    """A failed test must not leave its child waiting at a prompt."""
    yield
    while _SESSIONS:
        session = _SESSIONS.pop()
        try:
            os.kill(session.pid, signal.SIGKILL)
            os.waitpid(session.pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass


class Session:
    """A child process on a pseudo-terminal; read what it shows, type answers."""

    def __init__(self, script: Path, argv: list[str], env: dict[str, str]) -> None:
        pid, fd = pty.fork()
        if pid == 0:  # the child: stdin, stdout and stderr are the terminal
            # as a shell starts a foreground job: Ctrl-C interrupts it, even when the test
            # process inherited an ignored SIGINT (a child ignoring it never exits)
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            os.execve(sys.executable, [sys.executable, str(script), *argv], env)
        self.pid, self.fd = pid, fd
        _SESSIONS.append(self)
        self.seen = b""
        self.cursor = 0  # where the next expect() starts looking

    def expect(self, text: str, limit: float = 60.0) -> str:
        """Read until ``text`` appears after the last match (``limit`` is a safety net for a
        hung child, not a timing assertion)."""
        wanted = text.encode()
        while self.seen.find(wanted, self.cursor) < 0:
            ready, _, _ = select.select([self.fd], [], [], limit)
            assert ready, f"waited for {text!r}; the terminal shows {self.seen!r}"
            chunk = self._read()
            assert chunk, f"ended before {text!r}; the terminal shows {self.seen!r}"
        self.cursor = self.seen.find(wanted, self.cursor) + len(wanted)
        return self.seen.decode(errors="replace")

    def type(self, text: str) -> None:
        os.write(self.fd, text.encode())

    def _read(self) -> bytes:
        try:
            chunk = os.read(self.fd, 4096)
        except OSError:  # EIO: the child closed the terminal
            return b""
        self.seen += chunk
        return chunk

    def finish(self) -> tuple[int, str]:
        """Read to the end; ``(exit status, everything the terminal showed)``."""
        while True:
            ready, _, _ = select.select([self.fd], [], [], 60.0)
            assert ready, f"the process did not end; the terminal shows {self.seen!r}"
            if not self._read():
                break
        _, status = os.waitpid(self.pid, 0)
        os.close(self.fd)
        return os.waitstatus_to_exitcode(status), self.seen.decode(errors="replace")


@pytest.fixture
def script(tmp_path: Path) -> Path:
    path = tmp_path / "app.py"
    path.write_text(textwrap.dedent(APP))
    return path


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR")}
    env["TERM"] = "xterm"
    env.update(extra)
    return env


def test_prompts_hidden_input_and_confirmation_on_a_terminal(script: Path) -> None:
    session = Session(script, ["login"], _env())
    session.expect("User: ")
    session.type("ada\n")
    session.expect("Password: ")
    session.type("s3cret\n")
    session.expect("Repeat for confirmation: ")
    session.type("s3cret\n")
    session.expect("Proceed? [y/N]: ")
    session.type("y\n")
    status, screen = session.finish()
    assert status == 0, screen
    assert "user=ada password-length=6" in screen
    assert "ada" in screen.split("Password:")[0]  # visible input is echoed
    assert "s3cret" not in screen  # hidden input never is


def test_mismatched_hidden_entries_are_asked_again_on_a_terminal(script: Path) -> None:
    session = Session(script, ["login", "--user", "ada", "--yes"], _env(NO_COLOR="1"))
    session.expect("Password: ")
    session.type("one\n")
    session.expect("Repeat for confirmation: ")
    session.type("two\n")
    session.expect("Error: the two entries do not match.")
    session.expect("Password: ")
    session.type("pw\n")
    session.expect("Repeat for confirmation: ")
    session.type("pw\n")
    status, screen = session.finish()
    assert status == 0 and "password-length=2" in screen


def test_refusing_the_confirmation_on_a_terminal_exits_1(script: Path) -> None:
    session = Session(script, ["login", "--user", "a", "--password", "p"], _env(NO_COLOR="1"))
    session.expect("Proceed? [y/N]: ")
    session.type("n\n")
    status, screen = session.finish()
    assert status == 1
    assert screen.strip().splitlines()[-1] == "app login: aborted: not confirmed"
    assert "user=" not in screen


def test_end_of_input_at_a_terminal_prompt_exits_1_without_traceback(script: Path) -> None:
    session = Session(script, ["login"], _env(NO_COLOR="1"))
    session.expect("User: ")
    session.type("\x04")  # Ctrl-D
    status, screen = session.finish()
    assert status == 1
    assert screen.strip().splitlines()[-1] == "app login: aborted: end of input at prompt 'User'"
    assert "Traceback" not in screen


def test_ctrl_c_at_a_hidden_prompt_exits_130(script: Path) -> None:
    session = Session(script, ["login", "--user", "a"], _env(NO_COLOR="1"))
    session.expect("Password: ")
    session.type("\x03")  # Ctrl-C
    status, screen = session.finish()
    assert status == 130 and "Interrupted." in screen and "Traceback" not in screen


def test_errors_and_help_are_coloured_on_a_terminal(script: Path) -> None:
    status, screen = Session(script, ["count", "x"], _env()).finish()
    assert status == 2
    assert "app count: \x1b[31;1merror:\x1b[0m argument n: invalid int value: 'x'" in screen
    status, screen = Session(script, ["--help"], _env()).finish()
    assert status == 0 and "\x1b[1musage:\x1b[0m" in screen


@pytest.mark.parametrize("env", [{"NO_COLOR": "1"}, {"TERM": "dumb"}])
def test_no_colour_on_a_terminal_when_asked(script: Path, env: dict[str, str]) -> None:
    status, screen = Session(script, ["count", "x"], _env(**env)).finish()
    assert status == 2 and "\x1b[" not in screen
    assert "app count: error: argument n: invalid int value: 'x'" in screen


def test_progress_redraws_one_line_on_a_terminal(script: Path) -> None:
    status, screen = Session(script, ["count", "200"], _env()).finish()
    assert status == 0 and "total=19900" in screen
    assert "\rCounting [" in screen and "100%  200/200" in screen
    assert screen.count("\rCounting [") <= 102  # redrawn per percent, not per item
