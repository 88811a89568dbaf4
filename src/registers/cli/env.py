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
when neither is there the option is reported missing. Help names the variable but never
shows its value for secret parameters (names containing password, secret, token, key or
credential).
"""

from __future__ import annotations

__all__ = ["Env"]


class Env:
    """``Annotated`` metadata naming the environment variable that supplies a default.

    Args:
        name: The environment variable, e.g. ``"APP_TOKEN"``.
        secret: Hide the value in help and logs. ``None`` (the default) decides from the
            parameter name (password, secret, token, key, credential).
    """

    __slots__ = ("name", "secret")

    def __init__(self, name: str, *, secret: bool | None = None) -> None:
        if not name:
            raise ValueError("Env() needs the name of an environment variable")
        self.name = name
        self.secret = secret

    def __repr__(self) -> str:
        return f"Env({self.name!r})"
