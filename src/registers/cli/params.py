"""``Option``, ``Prompt`` and ``File``: ``Annotated`` metadata shaping one parameter.

They sit next to :class:`~registers.cli.env.Env` and follow its style: a small object in
``Annotated[T, ...]`` that only records what was asked for. Everything is checked when the
command is registered, so a mistake raises :class:`~registers.cli.exceptions.RegistrationError`
naming the parameter, never at run time.

Example:
    >>> from pathlib import Path
    >>> from typing import Annotated, TextIO
    >>> from registers.cli import CommandRegistry, File, Option, Prompt
    >>> cli = CommandRegistry(prog="app")
    >>> @cli.register()
    ... def export(
    ...     source: Annotated[TextIO, File("r")],
    ...     output: Annotated[Path, Option("-o", "--output")] = Path("out.csv"),
    ...     verbose: Annotated[int, Option("-v", count=True)] = 0,
    ...     token: Annotated[str, Prompt("API token", hide_input=True)] = "",
    ... ) -> None: ...
"""

from __future__ import annotations

from argparse import ArgumentTypeError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

__all__ = ["FILE_MODES", "File", "Option", "Prompt", "file_converter", "open_file"]

FILE_MODES = frozenset({"r", "w", "a", "x", "rb", "wb", "ab", "xb"})


class Option:
    """``Annotated`` metadata making a parameter a ``--option`` and refining how it looks.

    A parameter carrying ``Option`` is always an option, never positional; without a default
    it is a required option.

    Args:
        *names: Spellings: one-letter short names (``"-o"``) and long names
            (``"--output"``). Without a long name the parameter keeps its own
            (``--output`` for ``output``); giving one replaces it.
        help: Help text (a plain string in ``Annotated`` works too).
        count: Count repetitions (``-vvv`` gives 3); only for ``int`` parameters.
        required: Must be given even though the handler has a default.
        hidden: Accepted but left out of help and completion.
        deprecated: Still accepted, with a warning on stderr when used; a string says what
            to use instead (``"use --output instead"``).
        metavar: The value's placeholder in help (default: the type, e.g. ``PATH``).
    """

    __slots__ = ("count", "deprecated", "help", "hidden", "metavar", "names", "required")

    def __init__(
        self,
        *names: str,
        help: str | None = None,
        count: bool = False,
        required: bool = False,
        hidden: bool = False,
        deprecated: bool | str = False,
        metavar: str | None = None,
    ) -> None:
        self.names = names
        self.help = help
        self.count = count
        self.required = required
        self.hidden = hidden
        self.deprecated = deprecated
        self.metavar = metavar

    def __repr__(self) -> str:
        return f"Option({', '.join(map(repr, self.names))})"


class Prompt:
    """``Annotated`` metadata: ask for the value when it is not on the command line.

    The prompt appears only when stdin is a terminal (or ``invoke(input=...)`` feeds it);
    otherwise a missing value is a usage error (exit status 2). An empty answer takes the
    handler's default when there is one; a value that does not convert is reported and
    asked again. End of input at the prompt exits with status 1.

    Args:
        text: The question, e.g. ``"Password"`` (shown as ``"Password: "``).
        hide_input: Do not echo what is typed (passwords, tokens).
        confirm: Ask twice and require both answers to match.
        option: Also accept ``--name VALUE`` on the command line. ``False`` makes the
            prompt the only way in, which keeps secrets out of shell history.
    """

    __slots__ = ("confirm", "hide_input", "option", "text")

    def __init__(
        self, text: str, *, hide_input: bool = False, confirm: bool = False, option: bool = True
    ) -> None:
        self.text = text
        self.hide_input = hide_input
        self.confirm = confirm
        self.option = option

    def __repr__(self) -> str:
        return f"Prompt({self.text!r})"


class File:
    """``Annotated`` metadata for a ``TextIO``/``BinaryIO`` parameter: a path, opened for you.

    ``-`` means stdin (read modes) or stdout (write modes). A file to read must exist when
    the command line is parsed (else a usage error); files are opened just before the
    handler runs and closed after it returns (stdin and stdout are never closed).

    Args:
        mode: ``"r"``, ``"w"``, ``"a"``, ``"x"``, or one of those with ``"b"`` for a
            ``BinaryIO`` parameter.
        encoding: Text encoding (default: the locale's, like :func:`open`).
    """

    __slots__ = ("encoding", "mode")

    def __init__(self, mode: str = "r", *, encoding: str | None = None) -> None:
        self.mode = mode
        self.encoding = encoding

    @property
    def binary(self) -> bool:
        """Whether the file is opened in binary mode."""
        return "b" in self.mode

    @property
    def reads(self) -> bool:
        """Whether the file is read (``-`` is stdin) rather than written (``-`` is stdout)."""
        return self.mode.startswith("r")

    def __repr__(self) -> str:
        return f"File({self.mode!r})"


def file_converter(spec: File) -> Callable[[str], str]:
    """The command-line converter for a ``File`` parameter: checks the path, keeps the text.

    Files are opened later (:func:`open_file`), so a usage error elsewhere on the command
    line never leaves a truncated output file behind.
    """

    def convert(text: str) -> str:
        if text == "-" or not spec.reads:
            return text
        import os

        if os.path.isdir(text):
            raise ArgumentTypeError(f"can't open '{text}': it is a directory")
        if not os.path.exists(text):
            raise ArgumentTypeError(f"can't open '{text}': no such file")
        if not os.access(text, os.R_OK):
            raise ArgumentTypeError(f"can't open '{text}': permission denied")
        return text

    convert.__name__ = "file"
    return convert


def open_file(spec: File, value: Any) -> tuple[Any, bool]:
    """``(stream, close_after)`` for a ``File`` parameter's value.

    ``-`` is stdin or stdout (never closed); a path is opened with the spec's mode; any
    other value (an already open stream, ``None``) is passed through unchanged.

    Raises:
        OSError: The file cannot be opened (reported by the caller as one line).
    """
    import os
    import sys

    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if not isinstance(value, str):
        return value, False
    if value == "-":
        stream = sys.stdin if spec.reads else sys.stdout
        return (stream.buffer if spec.binary else stream), False
    if spec.binary:
        return open(value, spec.mode), True
    return open(value, spec.mode, encoding=spec.encoding), True
