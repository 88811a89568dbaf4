"""``invoke()``: run a registry in-process and capture what a user would see.

Used through :meth:`CommandRegistry.invoke`; modelled on Click's ``CliRunner``.
"""

from __future__ import annotations

import io
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable
    from typing import Any

    from .container import DIContainer
    from .middleware import MiddlewareChain
    from .registry import CommandRegistry

__all__ = ["InvokeResult", "invoke"]


class InvokeResult:
    """What one in-process run produced.

    Attributes:
        exit_code: 0 on success, else the ``SystemExit`` status (1 for an exception).
        stdout: Everything written to stdout.
        stderr: Everything written to stderr.
        return_value: The handler's return value (``None`` when it did not return).
        exception: The exception that ended the run (``SystemExit`` for non-zero exits),
            or ``None``.
        stdout_bytes: stdout as bytes (what ``File("wb")`` wrote to ``-`` included).
    """

    __slots__ = ("exception", "exit_code", "return_value", "stderr", "stdout", "stdout_bytes")

    def __init__(self, exit_code: int, stdout: str, stderr: str, return_value: Any,
                 exception: BaseException | None, stdout_bytes: bytes | None = None) -> None:
        self.exit_code = exit_code
        self.stdout = stdout
        self.stderr = stderr
        self.return_value = return_value
        self.exception = exception
        self.stdout_bytes = stdout.encode() if stdout_bytes is None else stdout_bytes

    @property
    def output(self) -> str:
        """Alias of ``stdout`` (Click's spelling)."""
        return self.stdout

    def __repr__(self) -> str:
        problem = f" {type(self.exception).__name__}" if self.exception else ""
        return f"<InvokeResult exit_code={self.exit_code}{problem}>"


def _exit_status(code: object) -> int:
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)  # sys.exit("message") prints the message, exits 1
    return 1


class _Terminal(io.BytesIO):
    """The bytes behind ``invoke(input=...)``: answers prompts as a terminal would."""

    def isatty(self) -> bool:
        return True


def _stream(raw: io.BytesIO) -> io.TextIOWrapper:
    return io.TextIOWrapper(raw, encoding="utf-8", errors="replace", newline=None,
                            write_through=True)


def invoke(
    registry: CommandRegistry,
    argv: Iterable[str] | str = (),
    *,
    container: DIContainer | None = None,
    middleware: MiddlewareChain | None = None,
    input: str | None = None,
) -> InvokeResult:
    """Run ``registry`` with ``argv``, capturing stdout/stderr; never raises ``SystemExit``.

    ``input`` stands in for a person at a terminal: prompts and confirmation questions read
    their answers from it, one line each (``input="s3cret\\ns3cret\\n"``). Without
    ``input``, stdin is empty and not a terminal, as in CI: a missing prompted value is a
    usage error and ``confirm=`` commands need ``--yes``. Exceptions from handlers are
    caught and returned in ``exception`` (exit code 1). Not thread-safe: like
    ``CliRunner`` it swaps ``sys.stdin/stdout/stderr`` meanwhile.
    """
    if isinstance(argv, str):
        import shlex

        argv = shlex.split(argv)
    raw_out = io.BytesIO()
    out, err = _stream(raw_out), io.StringIO()
    saved = sys.stdin, sys.stdout, sys.stderr
    sys.stdout, sys.stderr = out, err
    if input is None:
        sys.stdin = _stream(io.BytesIO())
    else:
        sys.stdin = _stream(_Terminal(input.encode()))
    exit_code, value = 0, None
    problem: BaseException | None = None
    try:
        value = registry.run(list(argv), container=container, middleware=middleware)
    except SystemExit as exc:
        exit_code = _exit_status(exc.code)
        problem = exc if exit_code else None
    except Exception as exc:
        exit_code, problem = 1, exc
    finally:
        sys.stdin, sys.stdout, sys.stderr = saved
    out.flush()
    data = raw_out.getvalue()
    text = data.decode("utf-8", errors="replace").replace("\r\n", "\n")
    return InvokeResult(exit_code, text, err.getvalue(), value, problem, data)
