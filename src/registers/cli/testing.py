"""``invoke()``: run a registry in-process and capture what a user would see.

Used through :meth:`CommandRegistry.invoke`; modelled on Click's ``CliRunner``.
"""

from __future__ import annotations

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
    """

    __slots__ = ("exception", "exit_code", "return_value", "stderr", "stdout")

    def __init__(self, exit_code: int, stdout: str, stderr: str, return_value: Any,
                 exception: BaseException | None) -> None:
        self.exit_code = exit_code
        self.stdout = stdout
        self.stderr = stderr
        self.return_value = return_value
        self.exception = exception

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


def invoke(
    registry: CommandRegistry,
    argv: Iterable[str] | str = (),
    *,
    container: DIContainer | None = None,
    middleware: MiddlewareChain | None = None,
    input: str | None = None,
) -> InvokeResult:
    """Run ``registry`` with ``argv``, capturing stdout/stderr; never raises ``SystemExit``.

    Exceptions from handlers are caught and returned in ``exception`` (exit code 1).
    Not thread-safe: like ``CliRunner`` it swaps ``sys.stdin/stdout/stderr`` meanwhile.
    """
    import io

    if isinstance(argv, str):
        import shlex

        argv = shlex.split(argv)
    out, err = io.StringIO(), io.StringIO()
    saved = sys.stdin, sys.stdout, sys.stderr
    sys.stdout, sys.stderr = out, err
    if input is not None:
        sys.stdin = io.StringIO(input)
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
    return InvokeResult(exit_code, out.getvalue(), err.getvalue(), value, problem)
