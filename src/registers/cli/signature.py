"""A handler's parameters planned as command-line arguments, options, flags and services.

This is where the C2 rules meet a concrete signature: which parameters are positional,
which become ``--options``, which are ``--flags`` and which are injected. Planning happens at
registration, so a handler that cannot become a command fails at decoration time.
"""

from __future__ import annotations

from .env import Env
from .exceptions import RegistrationError
from .middleware import is_secret_name
from .utils.reflection import (
    EMPTY,
    POSITIONAL_ONLY,
    VAR_KEYWORD,
    VAR_POSITIONAL,
    ParamInfo,
    get_params,
)
from .utils.typing import TypeInfo, UnsupportedAnnotation, classify, type_name

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

__all__ = ["ARGUMENT", "FLAG", "OPTION", "SERVICE", "CommandParam", "plan_params"]

ARGUMENT = "argument"
OPTION = "option"
FLAG = "flag"
SERVICE = "service"

# options every command parser owns
_RESERVED_OPTIONS = frozenset({"--help"})


class CommandParam:
    """One handler parameter and its place on the command line.

    Attributes:
        name: The parameter name (also the argparse ``dest``).
        role: ``"argument"`` (positional), ``"option"`` (``--name VALUE``), ``"flag"``
            (``--name`` / ``--no-name``) or ``"service"`` (injected by type).
        info: How the annotation converts (see :class:`~registers.cli.utils.typing.TypeInfo`).
        default: The handler's default, or ``EMPTY``.
        help: Help text from ``Annotated`` metadata or the docstring.
        env: The environment variable supplying a default, or ``None``.
        secret: Whether the value must never be shown (help, logs).
        positional_only: Must be passed positionally when calling the handler.
    """

    __slots__ = ("default", "env", "help", "info", "name", "positional_only", "role", "secret")

    def __init__(self, param: ParamInfo, info: TypeInfo, role: str, default: Any) -> None:
        self.name = param.name
        self.role = role
        self.info = info
        self.default = default
        self.positional_only = param.kind == POSITIONAL_ONLY
        strings = [m for m in info.metadata if isinstance(m, str)]
        self.help = strings[0] if strings else param.help
        env = next((m for m in info.metadata if isinstance(m, Env)), None)
        self.env = env.name if env is not None else None
        declared = env.secret if env is not None else None
        self.secret = is_secret_name(param.name) if declared is None else bool(declared)

    @property
    def option(self) -> str:
        """The option spelling: ``--dry-run`` for ``dry_run``, ``--type`` for ``type_``."""
        return option_name(self.name)

    @property
    def has_default(self) -> bool:
        """Whether the handler has a default for this parameter."""
        return self.default is not EMPTY

    def __repr__(self) -> str:
        return f"CommandParam({self.name!r}, {self.role!r}, {self.info.name!r})"


def option_name(name: str) -> str:
    """``--dry-run`` for ``dry_run``; a trailing ``_`` (``type_``, ``from_``: the PEP 8 way
    around a keyword or builtin) is not part of the option."""
    return "--" + (name.rstrip("_") or name).replace("_", "-")


def _annotation(param: ParamInfo) -> Any:
    if param.annotation is not EMPTY:
        return param.annotation
    if param.default is not EMPTY and param.default is not None:
        return type(param.default)
    return str


def _role(param: ParamInfo, info: TypeInfo, has_env: bool) -> str:
    if info.kind == "service":
        return SERVICE
    if info.kind == "flag":
        return FLAG
    if param.default is not EMPTY or info.optional or has_env:
        return OPTION
    return ARGUMENT


def _default(param: ParamInfo, info: TypeInfo, role: str) -> Any:
    if param.default is not EMPTY:
        return param.default
    if role == FLAG:
        return None if info.optional else False
    if info.optional:
        return None
    return EMPTY


def _plan(command: str, param: ParamInfo) -> CommandParam:
    where = f"Cannot register command '{command}': parameter '{param.name}'"
    if param.kind in (VAR_POSITIONAL, VAR_KEYWORD):
        star = "*" if param.kind == VAR_POSITIONAL else "**"
        raise RegistrationError(
            f"Cannot register command '{command}': {star}{param.name} has no command-line "
            "mapping; declare each argument as a named parameter."
        )
    try:
        info = classify(_annotation(param))
    except UnsupportedAnnotation as exc:
        raise RegistrationError(f"{where}: {exc}.") from exc
    has_env = any(isinstance(m, Env) for m in info.metadata)
    role = _role(param, info, has_env)
    if has_env and role == SERVICE:
        raise RegistrationError(
            f"{where}: Env() needs a command-line type, not the service {info.name}.")
    planned = CommandParam(param, info, role, _default(param, info, role))
    if role in (OPTION, FLAG) and planned.option in _RESERVED_OPTIONS:
        raise RegistrationError(f"{where}: '{planned.option}' is reserved for help; rename it.")
    return planned


def plan_params(command: str, handler: Callable[..., Any]) -> tuple[CommandParam, ...]:
    """Plan every parameter of ``handler`` for the command ``command``.

    Raises:
        RegistrationError: ``*args``/``**kwargs``, an annotation with no command-line
            mapping, an annotation that cannot be evaluated, or a reserved name.
    """
    try:
        params = get_params(handler)
    except (NameError, TypeError, ValueError) as exc:
        raise RegistrationError(f"Cannot register command '{command}': {exc}") from exc
    planned = tuple(_plan(command, param) for param in params)
    seen: dict[str, str] = {}
    for param in planned:
        if param.role not in (OPTION, FLAG):
            continue
        spellings = [param.option] + (["--no-" + param.option[2:]] if param.role == FLAG else [])
        for spelling in spellings:
            other = seen.get(spelling)
            if other is not None:
                raise RegistrationError(
                    f"Cannot register command '{command}': parameters '{other}' and "
                    f"'{param.name}' would both be {spelling}; rename one.")
            seen[spelling] = param.name
    return planned


def describe_type(param: CommandParam) -> str:
    """A readable type for help: ``int``, ``list[str]``..."""
    if param.info.kind == "many":
        if param.role == OPTION and param.info.nargs == "+":
            return f"{param.info.name}, repeat the option for more"
        if isinstance(param.info.nargs, int):
            return f"{param.info.nargs} {param.info.name} values"
        return f"{param.info.name}, one or more"
    return param.info.name or type_name(param.info.annotation)
