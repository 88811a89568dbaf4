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
from .env import Env
from .exceptions import (
    DependencyNotFoundError,
    DuplicateCommandError,
    FrameworkError,
    PluginLoadError,
    UnknownCommandError,
)
from .middleware import MiddlewareChain, logging_middleware_post, logging_middleware_pre
from .params import File, Option, Prompt
from .parser import build_parser
from .plugins import load_plugins
from .progressbar import Progress, progress
from .registry import CommandRegistry

__all__ = [
    "CommandRegistry",
    "DIContainer",
    "DependencyNotFoundError",
    "Dispatcher",
    "DuplicateCommandError",
    "Env",
    "File",
    "FrameworkError",
    "MiddlewareChain",
    "Option",
    "PluginLoadError",
    "Progress",
    "Prompt",
    "UnknownCommandError",
    "build_parser",
    "load_plugins",
    "logging_middleware_post",
    "logging_middleware_pre",
    "progress",
]
