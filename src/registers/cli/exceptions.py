"""Errors raised by ``registers.cli``, each knowing its exit status.

Hierarchy::

    FrameworkError                  exit 1, base of everything below
    ├── RegistrationError           a handler cannot become a command (bad signature)
    │   └── DuplicateCommandError   a name or alias is already taken
    ├── UsageError                  exit 2, the command line is wrong
    │   └── UnknownCommandError     no command has that name or alias
    ├── CommandError                a command failed: "<prog> <command>: error: <line>"
    ├── DependencyNotFoundError     a parameter could not be filled at dispatch
    └── PluginLoadError             a plugin package or module failed to import

``CommandRegistry.run`` prints a ``FrameworkError`` as one line on stderr (``show()``) and
exits with its ``exit_code``. Other exceptions raised by your own handlers go to the
handlers installed with ``@cli.error_handler(ExcType)``, then to the built-in ones
(``registers.db``'s ``RegistryError`` and pydantic's ``ValidationError``: one line, exit 1);
anything else propagates unchanged.
"""

from __future__ import annotations

import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import TextIO

__all__ = [
    "CommandError",
    "DependencyNotFoundError",
    "DuplicateCommandError",
    "FrameworkError",
    "PluginLoadError",
    "RegistrationError",
    "UnknownCommandError",
    "UsageError",
]


class FrameworkError(Exception):
    """Base class of every error raised by ``registers.cli``.

    Attributes:
        message: The one-line, user-facing description.
        exit_code: The process exit status ``run()`` uses for this error.
    """

    exit_code: int = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message

    def show(self, file: TextIO | None = None) -> None:
        """Write the message as one line to ``file`` (stderr by default)."""
        stream = file if file is not None else sys.stderr
        from .terminal import RED, style

        print(style(self.message, RED, stream), file=stream)


class RegistrationError(FrameworkError):
    """A handler cannot be registered as a command (raised at decoration time)."""


class DuplicateCommandError(RegistrationError):
    """A command name or alias collides with one that is already registered.

    Attributes:
        name: The colliding name or alias, as written.
        existing: The command that already owns it.
        new: The command being registered.
    """

    def __init__(self, name: str, existing: str, new: str) -> None:
        if existing == new:
            text = f"Command '{new}' is already registered."
        else:
            text = (
                f"Cannot register command '{new}': '{name}' is already used by "
                f"command '{existing}'."
            )
        super().__init__(text)
        self.name = name
        self.existing = existing
        self.new = new


class UsageError(FrameworkError):
    """The command line is wrong; exits with status 2 like argparse usage errors."""

    exit_code = 2


class UnknownCommandError(UsageError):
    """No command has the requested name or alias.

    Attributes:
        name: The name that was asked for.
        suggestion: The closest known command name, or ``None``.
    """

    def __init__(self, name: str, suggestion: str | None = None) -> None:
        text = f"Unknown command '{name}'."
        if suggestion is not None:
            text += f" Did you mean '{suggestion}'?"
        super().__init__(text)
        self.name = name
        self.suggestion = suggestion


class CommandError(FrameworkError):
    """A command failed in a way its user can act on; raise it from a handler.

    ``run()`` shows each line as ``<prog> <command>: error: <line>`` (the program and
    command path of the run, so it is right wherever the command was merged) and, for a
    usage error (``exit_code=2``), adds ``Try '<prog> <command> --help' for help.``

    Args:
        lines: One or more messages, one line each.
        exit_code: The exit status (default 1; 2 for bad input).

    Attributes:
        where: ``"<prog> <command>"``, filled in by ``run()``.
    """

    def __init__(self, *lines: str, exit_code: int = 1) -> None:
        self.lines = tuple(" ".join(str(line).splitlines()) for line in lines) or ("failed",)
        super().__init__("\n".join(self.lines))
        self.exit_code = exit_code
        self.where: str | None = None

    def show(self, file: TextIO | None = None) -> None:
        """Write each line, prefixed with ``where``, to ``file`` (stderr by default)."""
        prefix = f"{self.where}: error: " if self.where else "error: "
        text = "\n".join(prefix + line for line in self.lines)
        if self.exit_code == 2 and self.where:
            text += f"\nTry '{self.where} --help' for help."
        print(text, file=file if file is not None else sys.stderr)


class DependencyNotFoundError(FrameworkError):
    """A parameter has no value: not given, not in the container, and no default.

    Attributes:
        parameter: The parameter name, or ``None`` when resolving a type directly.
        type: The annotation that could not be resolved.
    """

    def __init__(self, message: str, *, parameter: str | None = None, type: object = None) -> None:
        super().__init__(message)
        self.parameter = parameter
        self.type = type


class PluginLoadError(FrameworkError):
    """A plugin package does not exist or one of its modules failed to import.

    The original exception is chained as ``__cause__``.

    Attributes:
        module: The dotted name of the module that failed.
    """

    def __init__(self, message: str, *, module: str) -> None:
        super().__init__(message)
        self.module = module
