"""Talking to the person at the terminal: colour, prompts and yes/no questions.

Colour follows the https://no-color.org convention, in the order Python itself uses:
``NO_COLOR`` (non-empty) turns it off, else ``FORCE_COLOR`` (non-empty) turns it on, else
``TERM=dumb`` turns it off, else the stream must be a terminal.

Prompts and questions are written to stderr, so ``app cmd > out.txt`` still shows them;
answers are read from stdin. They are asked only when stdin is a terminal (or
``invoke(input=...)`` stands in for one).
"""

from __future__ import annotations

import os
import sys
from argparse import ArgumentTypeError

from .exceptions import CommandError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any, TextIO

__all__ = ["REQUIRED", "Aborted", "ask", "colour_enabled", "confirm", "interactive", "style"]

RED, YELLOW, BOLD, CYAN = "31", "33", "1", "36"
REQUIRED: Any = object()  # ask(default=REQUIRED): an empty answer is asked again
_YES = frozenset({"y", "yes"})
_NO = frozenset({"n", "no"})


class Aborted(CommandError):
    """The user declined, or input ended at a prompt: exit status 1, one line.

    Shown as ``<prog> <command>: aborted: <reason>``; ``run()`` fills in ``where`` when
    the raiser did not.
    """

    def __init__(self, reason: str, where: str | None = None) -> None:
        super().__init__(reason)
        self.where = where

    def show(self, file: TextIO | None = None) -> None:
        stream = file if file is not None else sys.stderr
        prefix = f"{self.where}: " if self.where else ""
        print(style(f"{prefix}aborted: {self.lines[0]}", RED, stream), file=stream)


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):
        return False


def colour_enabled(stream: Any) -> bool:
    """Whether ANSI colour may be written to ``stream`` (see the module docstring)."""
    if os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("FORCE_COLOR"):
        return True
    if os.environ.get("TERM") == "dumb":
        return False
    return _isatty(stream)


def style(text: str, code: str, stream: Any) -> str:
    """``text`` wrapped in the ANSI ``code`` when ``stream`` takes colour, else unchanged."""
    if not text or not colour_enabled(stream):
        return text
    return f"\x1b[{code}m{text}\x1b[0m"


def interactive() -> bool:
    """Whether a person can answer: stdin is a terminal (``invoke(input=...)`` counts)."""
    return _isatty(sys.stdin)


def _read(question: str, hide_input: bool) -> str:
    """One answer without its line end. Raises ``EOFError`` at end of input."""
    stdin = sys.stdin
    if hide_input and _real_terminal(stdin):
        import getpass

        return getpass.getpass(question, stream=sys.stderr)
    sys.stderr.write(question)
    sys.stderr.flush()
    line = stdin.readline()
    if not line:
        sys.stderr.write("\n")  # the message that follows starts on its own line
        raise EOFError
    answer = line.rstrip("\r\n")
    if not _real_terminal(stdin):  # invoke(input=...): show what a terminal would echo
        sys.stderr.write("\n" if hide_input else answer + "\n")
    return answer


def _real_terminal(stream: Any) -> bool:
    try:
        return os.isatty(stream.fileno())
    except (AttributeError, ValueError, OSError):
        return False


def _error(message: str) -> None:
    print(style("Error:", RED, sys.stderr), message, file=sys.stderr)


def ask(
    text: str,
    *,
    convert: Callable[[str], Any] = str,
    hide_input: bool = False,
    confirm: bool = False,
    default: Any = REQUIRED,
    show_default: str | None = None,
    where: str = "",
) -> Any:
    """Ask for one value until it converts; ``default`` answers an empty reply.

    Args:
        text: The question (``": "`` is appended, with ``[shown default]`` before it).
        convert: Turns the answer into the value; ``ValueError``/``TypeError`` (including
            argparse's ``ArgumentTypeError``) mean "ask again".
        hide_input: Do not echo the answer.
        confirm: Ask a second time and require the same answer.
        default: Returned for an empty answer; ``REQUIRED`` (the default) asks again.
        show_default: The default as shown in the question (``None``: not shown).
        where: Names the command in the end-of-input message.

    Raises:
        Aborted: Input ended (Ctrl-D / closed stdin).
    """
    suffix = f" [{show_default}]" if show_default else ""
    question = f"{text}{suffix}: "
    try:
        while True:
            answer = _read(question, hide_input)
            if not answer and default is not REQUIRED:
                return default
            if not answer:
                _error("a value is required.")
                continue
            try:
                value = convert(answer)
            except (ValueError, TypeError, ArgumentTypeError) as exc:
                _error(f"{exc}.")
                continue
            if confirm and _read("Repeat for confirmation: ", hide_input) != answer:
                _error("the two entries do not match.")
                continue
            return value
    except EOFError:
        raise Aborted(f"end of input at prompt {text!r}", where or None) from None


def confirm(question: str, *, where: str = "") -> bool:
    """Ask ``question [y/N]``; an empty answer is no.

    Raises:
        Aborted: Input ended.
    """
    try:
        while True:
            answer = _read(f"{question} [y/N]: ", False).strip().lower()
            if answer in _YES:
                return True
            if not answer or answer in _NO:
                return False
            _error("answer y or n.")
    except EOFError:
        raise Aborted(f"end of input at prompt {question!r}", where or None) from None


def write_error_line(stream: TextIO, prefix: str, message: str, level: str = "error") -> None:
    """``prefix: error: message`` with the level coloured on a terminal."""
    code = RED if level == "error" else YELLOW
    label = style(f"{level}:", code + ";" + BOLD, stream)
    stream.write(f"{prefix}: {label} {message}\n")
