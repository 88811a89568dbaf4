"""Errors raised by ``registers.cli``, each knowing its exit status.

Hierarchy::

    FrameworkError                  exit 1, base of everything below
    ├── RegistrationError           a handler cannot become a command (bad signature)
    │   └── DuplicateCommandError   a name or alias is already taken
    ├── UsageError                  exit 2, the command line is wrong
    │   └── UnknownCommandError     no command has that name or alias
    ├── DependencyNotFoundError     a parameter could not be filled at dispatch
    └── PluginLoadError             a plugin package or module failed to import

``CommandRegistry.run`` prints a ``FrameworkError`` as one line on stderr (``show()``) and
exits with its ``exit_code``; exceptions raised by your own handlers propagate unchanged.
"""

from __future__ import annotations

import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import TextIO

__all__ = [
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
