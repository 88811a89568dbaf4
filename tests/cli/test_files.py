"""C13: File() parameters: paths opened for the handler, '-' for stdin/stdout."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import IO, Annotated, Any, BinaryIO, TextIO

import pytest

from registers.cli import CommandRegistry, File, Option
from registers.cli.exceptions import RegistrationError


@pytest.fixture
def copy_app(cli: CommandRegistry) -> CommandRegistry:
    @cli.register()
    def upper(source: Annotated[TextIO, File("r")],
              output: Annotated[TextIO, File("w"), Option("-o")] = "-") -> None:  # type: ignore[assignment]
        output.write(source.read().upper())

    return cli


def test_a_path_is_opened_and_closed(copy_app: CommandRegistry, tmp_path: Path) -> None:
    (tmp_path / "in.txt").write_text("hello\n")
    target = tmp_path / "out.txt"
    result = copy_app.invoke(["upper", str(tmp_path / "in.txt"), "-o", str(target)])
    assert result.exit_code == 0, result.stderr
    assert target.read_text() == "HELLO\n"


def test_dash_is_stdin_and_stdout(copy_app: CommandRegistry) -> None:
    result = copy_app.invoke(["upper", "-"], input="from stdin\n")
    assert (result.exit_code, result.stdout) == (0, "FROM STDIN\n")


def test_a_missing_input_file_is_a_usage_error(copy_app: CommandRegistry, tmp_path: Path) -> None:
    result = copy_app.invoke(["upper", str(tmp_path / "nope.txt")])
    assert result.exit_code == 2
    assert result.stderr == (f"app upper: error: argument source: can't open "
                             f"'{tmp_path / 'nope.txt'}': no such file\n"
                             "Try 'app upper --help' for help.\n")


def test_a_directory_is_a_usage_error(copy_app: CommandRegistry, tmp_path: Path) -> None:
    result = copy_app.invoke(["upper", str(tmp_path)])
    assert result.exit_code == 2 and "it is a directory" in result.stderr


def test_an_output_file_is_not_touched_when_the_command_line_is_wrong(
    cli: CommandRegistry, tmp_path: Path
) -> None:
    @cli.register()
    def write(out: Annotated[TextIO, File("w")], times: int = 1) -> None:
        out.write("x" * times)

    target = tmp_path / "keep.txt"
    target.write_text("precious")
    assert cli.invoke(["write", str(target), "--times", "two"]).exit_code == 2
    assert target.read_text() == "precious"
    assert cli.invoke(["write", str(target), "--times", "2"]).exit_code == 0
    assert target.read_text() == "xx"


def test_an_output_file_that_cannot_be_opened_exits_1_with_one_line(
    cli: CommandRegistry, tmp_path: Path
) -> None:
    @cli.register()
    def write(out: Annotated[TextIO, File("w")]) -> None: ...

    result = cli.invoke(["write", str(tmp_path / "no" / "such" / "dir.txt")])
    assert result.exit_code == 1
    assert result.stderr == (f"Cannot open out '{tmp_path / 'no' / 'such' / 'dir.txt'}': "
                             "No such file or directory.\n")


def test_exclusive_create_refuses_an_existing_file(cli: CommandRegistry, tmp_path: Path) -> None:
    @cli.register()
    def new(out: Annotated[TextIO, File("x")]) -> None:
        out.write("new")

    target = tmp_path / "a.txt"
    assert cli.invoke(["new", str(target)]).exit_code == 0
    again = cli.invoke(["new", str(target)])
    assert again.exit_code == 1 and "File exists" in again.stderr


def test_binary_files_and_dash(cli: CommandRegistry, tmp_path: Path) -> None:
    @cli.register()
    def dump(source: Annotated[BinaryIO, File("rb")],
             out: Annotated[BinaryIO, File("wb")]) -> int:
        data = source.read()
        out.write(data[::-1])
        return len(data)

    src = tmp_path / "in.bin"
    src.write_bytes(b"\x00\x01\xff")
    result = cli.invoke(["dump", str(src), "-"])
    assert result.exit_code == 0, result.stderr
    assert result.stdout_bytes == b"\xff\x01\x003\n"
    piped = cli.invoke(["dump", "-", str(tmp_path / "out.bin")], input="abc")
    assert piped.return_value == 3 and (tmp_path / "out.bin").read_bytes() == b"cba"


def test_append_mode_and_encoding(cli: CommandRegistry, tmp_path: Path) -> None:
    @cli.register()
    def log(line: str, out: Annotated[IO[str], File("a", encoding="latin-1")]) -> None:
        out.write(line + "\n")

    target = tmp_path / "log.txt"
    cli.invoke(["log", "één", str(target)])
    cli.invoke(["log", "twee", str(target)])
    assert target.read_bytes() == "één\ntwee\n".encode("latin-1")


def test_optional_file_left_out_is_none(cli: CommandRegistry) -> None:
    @cli.register()
    def run(config: Annotated[TextIO | None, File("r")] = None) -> str:
        return repr(config)

    assert cli.invoke(["run"]).stdout == "None\n"


def test_files_are_closed_even_when_the_handler_fails(
    cli: CommandRegistry, tmp_path: Path
) -> None:
    seen: list[Any] = []

    @cli.register()
    def boom(source: Annotated[TextIO, File("r")]) -> None:
        seen.append(source)
        raise RuntimeError("boom")

    (tmp_path / "a.txt").write_text("x")
    result = cli.invoke(["boom", str(tmp_path / "a.txt")])
    assert isinstance(result.exception, RuntimeError) and seen[0].closed


def test_stdin_and_stdout_are_never_closed(tmp_path: Path) -> None:
    script = tmp_path / "app.py"
    script.write_text(
        "from typing import Annotated, TextIO\n"
        "from registers.cli import CommandRegistry, File\n"
        "cli = CommandRegistry(prog='app')\n"
        "@cli.register()\n"
        "def cat(source: Annotated[TextIO, File('r')], out: Annotated[TextIO, File('w')]) -> str:\n"
        "    out.write(source.read())\n"
        "    return 'after'\n"
        "cli.run()\n"
    )
    result = subprocess.run([sys.executable, str(script), "cat", "-", "-"], input="piped\n",
                            capture_output=True, text=True, timeout=60)
    assert (result.returncode, result.stdout, result.stderr) == (0, "piped\nafter\n", "")


def test_help_says_dash_means_stdin(copy_app: CommandRegistry) -> None:
    out = copy_app.invoke(["upper", "--help"]).stdout
    assert "(file, '-' for stdin)" in out and "(file, '-' for stdout)" in out


@pytest.mark.parametrize(("annotation", "mode", "message"), [
    (str, "r", "File() needs a TextIO or BinaryIO annotation, not str"),
    (Path, "r", "File() needs a TextIO or BinaryIO annotation, not Path"),
    (list[str], "r", "File() needs a TextIO or BinaryIO annotation"),
    (TextIO, "rb", "File('rb') opens a binary file; annotate it BinaryIO"),
    (BinaryIO, "w", "File('w') opens a text file; annotate it TextIO"),
    (TextIO, "rw", "invalid File mode 'rw'"),
    (TextIO, "r+", "invalid File mode 'r+'"),
])
def test_bad_files_raise_at_registration(
    cli: CommandRegistry, annotation: Any, mode: str, message: str
) -> None:
    def run(target: Any) -> None: ...

    run.__annotations__["target"] = Annotated[annotation, File(mode)]
    with pytest.raises(RegistrationError) as caught:
        cli.register()(run)
    assert "parameter 'target'" in str(caught.value) and message in str(caught.value)


def test_a_file_type_without_file_is_still_a_service(cli: CommandRegistry) -> None:
    @cli.register()
    def run(out: TextIO) -> None: ...

    assert cli.get("run").params[0].role == "service"
