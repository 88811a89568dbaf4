"""registers.cli: turn typed Python functions into a command-line tool with one decorator.

Example:
    >>> from registers.cli import CommandRegistry
    >>> cli = CommandRegistry(prog="app")
    >>> @cli.register(ops=["-g", "--greet"], description="Greet someone by name")
    ... def greet(name: str) -> str:
    ...     return f"Hello, {name}!"
    >>> cli.run(["greet", "Alice"])
    Hello, Alice!
    'Hello, Alice!'

Importing this package imports argparse and nothing heavy (no pydantic, SQLAlchemy,
asyncio, inspect, typing or logging); those load only when a feature needs them.
"""

from .container import DIContainer
from .dispatcher import Dispatcher
from .exceptions import (
    DependencyNotFoundError,
    DuplicateCommandError,
    FrameworkError,
    PluginLoadError,
    UnknownCommandError,
)
from .middleware import MiddlewareChain, logging_middleware_post, logging_middleware_pre
from .parser import build_parser
from .plugins import load_plugins
from .registry import CommandRegistry

__all__ = [
    "CommandRegistry",
    "DIContainer",
    "DependencyNotFoundError",
    "Dispatcher",
    "DuplicateCommandError",
    "FrameworkError",
    "MiddlewareChain",
    "PluginLoadError",
    "UnknownCommandError",
    "build_parser",
    "load_plugins",
    "logging_middleware_post",
    "logging_middleware_pre",
]
