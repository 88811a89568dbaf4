"""``Env``: let an option take its default from an environment variable.

Example:
    >>> from typing import Annotated
    >>> from registers.cli import CommandRegistry
    >>> from registers.cli.env import Env
    >>> cli = CommandRegistry(prog="app")
    >>> @cli.register()
    ... def deploy(token: Annotated[str, Env("APP_TOKEN")]) -> str:
    ...     return "ok"

``deploy`` then accepts ``--token VALUE``; when it is not given, ``$APP_TOKEN`` is used, and
when neither is there the option is reported missing. An empty variable counts as unset.
The text is converted like a command-line value: ``list[T]`` options split it on
whitespace (``os.pathsep`` for paths), ``bool`` flags take 1/true/yes/on/y or
0/false/no/off/n (any case); anything else is a usage error naming the variable. Help names
the variable but never shows its value for secret parameters (see
:func:`registers.cli.middleware.is_secret_name`, or ``Env(..., secret=True)``).
"""

from __future__ import annotations

__all__ = ["Env"]


class Env:
    """``Annotated`` metadata naming the environment variable that supplies a default.

    Args:
        name: The environment variable, e.g. ``"APP_TOKEN"``.
        secret: Hide the value in help, logs and error messages. ``None`` (the default)
            decides from the parameter name (``is_secret_name``: password, token, pin...).
    """

    __slots__ = ("name", "secret")

    def __init__(self, name: str, *, secret: bool | None = None) -> None:
        if not name:
            raise ValueError("Env() needs the name of an environment variable")
        self.name = name
        self.secret = secret

    def __repr__(self) -> str:
        return f"Env({self.name!r})"
