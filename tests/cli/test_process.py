"""Issue 17: the program as a process: closed pipes, full disks, exit statuses."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from registers.cli import CommandRegistry

APP = textwrap.dedent(
    """
    import sys
    from registers.cli import CommandRegistry

    cli = CommandRegistry(prog="app")


    @cli.register()
    def numbers(n: int = 100000) -> None:
        for i in range(n):
            print(i)


    @cli.register()
    def rows(n: int = 100000):
        yield from range(n)


    @cli.register()
    def big(n: int = 100000) -> list[int]:
        return list(range(n))


    @cli.register()
    def fail() -> None:
        raise FileNotFoundError(2, "No such file or directory", "missing.txt")


    cli.run()
    """
)


@pytest.fixture
def app(tmp_path: Path) -> Path:
    path = tmp_path / "app.py"
    path.write_text(APP)
    return path


def _pipe_into_head(app: Path, *argv: str) -> tuple[int, str]:
    producer = subprocess.Popen([sys.executable, str(app), *argv], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)
    assert producer.stdout is not None and producer.stderr is not None
    producer.stdout.readline()
    producer.stdout.close()  # like `head -1` exiting
    stderr = producer.stderr.read().decode()
    return producer.wait(timeout=60), stderr


@pytest.mark.parametrize("argv", [["numbers"], ["rows"], ["big"], ["--help"]])
def test_closed_pipe_exits_1_quietly_like_click(app: Path, argv: list[str]) -> None:
    status, stderr = _pipe_into_head(app, *argv)
    if argv == ["--help"]:  # small enough to be written before the pipe closes
        assert status in (0, 1)
    else:
        assert status == 1
    assert stderr == ""


def test_closed_pipe_through_a_real_shell_pipeline(app: Path) -> None:
    result = subprocess.run(
        f"'{sys.executable}' '{app}' numbers | head -2; echo \"status=${{PIPESTATUS[0]}}\"",
        shell=True, executable="/bin/bash", capture_output=True, text=True, timeout=60)
    assert result.stdout == "0\n1\nstatus=1\n"
    assert result.stderr == ""


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="no /dev/full")
@pytest.mark.parametrize("argv", [["numbers"], ["numbers", "--n", "3"], ["rows"], ["--help"]])
def test_full_disk_is_one_line_and_exit_1(app: Path, argv: list[str]) -> None:
    with open("/dev/full", "w") as full:
        result = subprocess.run([sys.executable, str(app), *argv], stdout=full,
                                stderr=subprocess.PIPE, text=True, timeout=60)
    assert result.returncode == 1
    assert result.stderr.endswith(": error: cannot write output: No space left on device\n")
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


def test_other_os_errors_of_a_handler_still_propagate(app: Path) -> None:
    result = subprocess.run([sys.executable, str(app), "fail"], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 1
    assert "FileNotFoundError" in result.stderr and "Traceback" in result.stderr


@pytest.mark.parametrize(("argv", "status"), [(["numbers", "--n", "1"], 0), (["nope"], 2),
                                               (["numbers", "--n", "x"], 2), ([], 2)])
def test_exit_statuses_of_the_process(app: Path, argv: list[str], status: int) -> None:
    result = subprocess.run([sys.executable, str(app), *argv], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == status


def test_broken_pipe_in_process_is_exit_1_and_silent(cli: CommandRegistry) -> None:
    @cli.register()
    def out() -> None:
        raise BrokenPipeError(32, "Broken pipe")

    result = cli.invoke(["out"])
    assert (result.exit_code, result.stdout, result.stderr) == (1, "", "")
