"""A handler's parameters planned as command-line arguments, options, flags and services.

This is where the C2 rules meet a concrete signature: which parameters are positional,
which become ``--options``, which are ``--flags`` and which are injected. Planning happens at
registration, so a handler that cannot become a command fails at decoration time.
"""

from __future__ import annotations

from .env import Env
from .exceptions import RegistrationError
from .middleware import is_secret_name
from .params import FILE_MODES, File, Option, Prompt
from .utils.reflection import (
    EMPTY,
    POSITIONAL_ONLY,
    VAR_KEYWORD,
    VAR_POSITIONAL,
    ParamInfo,
    get_params,
)
from .utils.typing import (
    TypeInfo,
    UnsupportedAnnotation,
    classify,
    strip_optional,
    type_name,
    unwrap_annotated,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any, TypeVar

    T = TypeVar("T")

__all__ = [
    "ARGUMENT",
    "FLAG",
    "OPTION",
    "PROMPT",
    "SERVICE",
    "CommandParam",
    "check_exclusive",
    "check_spellings",
    "plan_params",
]

ARGUMENT = "argument"
OPTION = "option"
FLAG = "flag"
SERVICE = "service"
PROMPT = "prompt"  # asked for at a prompt only, never on the command line

# options every command parser owns
_RESERVED_OPTIONS = frozenset({"-h", "--help"})
_SHORT_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
_LONG_CHARS = _SHORT_CHARS | frozenset("0123456789-")
# typing's file types, recognised by name so that typing is never imported here
_TEXT_FILES = frozenset({"typing.TextIO", "io.TextIOBase", "io.TextIOWrapper"})
_BINARY_FILES = frozenset({"typing.BinaryIO", "io.BufferedIOBase", "io.RawIOBase",
                           "io.BufferedReader", "io.BufferedWriter"})
_ANY_FILES = frozenset({"typing.IO", "io.IOBase"})


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
        names: Every option spelling (``("-o", "--output")``); empty for arguments.
        count: Counts repetitions (``-vvv``).
        required: Must be given on the command line (or come from ``env``/``prompt``).
        hidden: Left out of help and completion.
        deprecated: ``False``, ``True`` or what to use instead.
        metavar: The value placeholder in help, or ``None`` for the default.
        prompt: How to ask for a missing value, or ``None``.
        file: How to open the value, or ``None``.
    """

    __slots__ = ("count", "default", "deprecated", "env", "file", "help", "hidden", "info",
                 "metavar", "name", "names", "positional_only", "prompt", "required", "role",
                 "secret")

    def __init__(self, param: ParamInfo, info: TypeInfo, role: str, default: Any) -> None:
        self.name = param.name
        self.role = role
        self.info = info
        self.default = default
        self.positional_only = param.kind == POSITIONAL_ONLY
        strings = [m for m in info.metadata if isinstance(m, str)]
        option = _find(info, Option)
        self.help = (option.help if option is not None and option.help is not None
                     else strings[0] if strings else param.help)
        env = _find(info, Env)
        self.env = env.name if env is not None else None
        self.prompt = _find(info, Prompt)
        self.file = _find(info, File)
        declared = env.secret if env is not None else None
        if declared is None and self.prompt is not None and self.prompt.hide_input:
            declared = True
        self.secret = is_secret_name(param.name) if declared is None else bool(declared)
        self.count = bool(option is not None and option.count)
        self.hidden = bool(option is not None and option.hidden)
        self.deprecated: bool | str = option.deprecated if option is not None else False
        self.metavar = option.metavar if option is not None else None
        self.required = bool(option is not None and option.required)
        self.names: tuple[str, ...] = ()
        if role in (OPTION, FLAG):
            self.names = _spellings(param.name, option.names if option is not None else ())

    @property
    def option(self) -> str:
        """The long option spelling: ``--dry-run`` for ``dry_run``, ``--type`` for ``type_``
        (or the long name declared with ``Option``)."""
        long_names = [n for n in self.names if n.startswith("--")]
        return long_names[0] if long_names else option_name(self.name)

    @property
    def display(self) -> str:
        """How messages name the parameter: ``--output`` for options, ``name`` otherwise."""
        return self.option if self.role in (OPTION, FLAG, PROMPT) else self.name

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


_METADATA = (Option, Env, Prompt, File)


def _find(info: TypeInfo, kind: type[T]) -> T | None:
    """The first ``kind`` in ``info``'s ``Annotated`` metadata (sorted once per annotation:
    planning asks several times per parameter, and start-up pays for each)."""
    found = info.found
    if found is None:
        found = {}
        for item in info.metadata:
            for cls in _METADATA:
                if isinstance(item, cls):
                    found.setdefault(cls, item)
        info.found = found
    return found.get(kind)


def _spellings(name: str, declared: tuple[str, ...]) -> tuple[str, ...]:
    """Short names first, then the long ones; the parameter's own long name by default."""
    shorts = tuple(n for n in declared if not n.startswith("--"))
    longs = tuple(n for n in declared if n.startswith("--"))
    return shorts + (longs or (option_name(name),))


def _check_names(where: str, names: tuple[str, ...]) -> None:
    for name in names:
        if not isinstance(name, str):
            raise RegistrationError(f"{where}: option name {name!r} is not a string.")
        if name.startswith("--"):
            body = name[2:]
            valid = bool(body) and body[0] in _SHORT_CHARS and set(body) <= _LONG_CHARS
        else:
            valid = len(name) == 2 and name[0] == "-" and name[1] in _SHORT_CHARS
        if not valid:
            raise RegistrationError(
                f"{where}: invalid option name {name!r} (use '-x' with one letter, or "
                "'--name')."
            )


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
    prompt = _find(info, Prompt)
    if prompt is not None and not prompt.option:
        return PROMPT
    if _find(info, Option) is not None or prompt is not None:
        return OPTION
    if param.default is not EMPTY or info.optional or has_env:
        return OPTION
    return ARGUMENT


def _classify(annotation: Any) -> TypeInfo:
    """``classify``, letting ``File()`` take generic file types such as ``IO[str]``."""
    try:
        return classify(annotation)
    except UnsupportedAnnotation:
        bare, metadata = unwrap_annotated(annotation)
        if not any(isinstance(m, File) for m in metadata):
            raise
        bare, optional = strip_optional(bare)
        return TypeInfo("service", bare, optional=optional, metadata=metadata)


def _file_kind(annotation: Any) -> str | None:
    """``"text"``, ``"binary"`` or ``"any"`` for a file annotation, else ``None``."""
    origin = getattr(annotation, "__origin__", None)
    target = origin if origin is not None else annotation
    key = f"{getattr(target, '__module__', '')}.{getattr(target, '__qualname__', '')}"
    if key in _TEXT_FILES:
        return "text"
    if key in _BINARY_FILES:
        return "binary"
    if key in _ANY_FILES:
        args = getattr(annotation, "__args__", ())
        if args == (str,):
            return "text"
        if args == (bytes,):
            return "binary"
        return "any"
    return None


def _file_info(where: str, info: TypeInfo, spec: File) -> TypeInfo:
    if spec.mode not in FILE_MODES:
        raise RegistrationError(
            f"{where}: invalid File mode {spec.mode!r} (choose from "
            f"{', '.join(sorted(FILE_MODES))})."
        )
    kind = _file_kind(info.annotation)
    if kind is None:
        raise RegistrationError(
            f"{where}: File() needs a TextIO or BinaryIO annotation, not "
            f"{type_name(info.annotation)}."
        )
    if kind != "any" and (kind == "binary") != spec.binary:
        wanted = "BinaryIO" if spec.binary else "TextIO"
        raise RegistrationError(
            f"{where}: File({spec.mode!r}) opens a {'binary' if spec.binary else 'text'} "
            f"file; annotate it {wanted}."
        )
    from .params import file_converter

    return TypeInfo("value", info.annotation, convert=file_converter(spec), name="file",
                    optional=info.optional, metadata=info.metadata)


def _check_metadata(where: str, param: ParamInfo, info: TypeInfo) -> None:
    option, prompt = _find(info, Option), _find(info, Prompt)
    if info.kind == "service" and (option is not None or prompt is not None):
        kind = "Option()" if option is not None else "Prompt()"
        raise RegistrationError(
            f"{where}: {kind} on {type_name(info.annotation)}, which has no command-line "
            "mapping (it would be injected)."
        )
    if option is not None:
        _check_names(where, option.names)
        if option.count and (info.kind != "value" or info.annotation is not int):
            raise RegistrationError(
                f"{where}: count=True needs an int parameter, not "
                f"{type_name(info.annotation)}."
            )
        if info.kind == "flag" and (option.required or option.metavar):
            what = "required=True" if option.required else "metavar="
            raise RegistrationError(f"{where}: {what} does not apply to a flag.")
        if option.count and (option.required or option.metavar):
            what = "required=True" if option.required else "metavar="
            raise RegistrationError(f"{where}: {what} does not apply to count=True.")
        if prompt is not None and not prompt.option:
            raise RegistrationError(
                f"{where}: Option() on a Prompt(option=False) parameter, which is never an "
                "option."
            )
    if prompt is not None:
        if info.kind == "many":
            raise RegistrationError(
                f"{where}: Prompt() asks for one value; {type_name(info.annotation)} takes "
                "several."
            )
        if info.kind == "flag":
            raise RegistrationError(
                f"{where}: Prompt() on a flag; use register(confirm=...) to ask yes/no."
            )
        if option is not None and option.count:
            raise RegistrationError(f"{where}: Prompt() and count=True do not combine.")


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
        info = _classify(_annotation(param))
    except UnsupportedAnnotation as exc:
        raise RegistrationError(f"{where}: {exc}.") from exc
    spec = _find(info, File)
    if spec is not None:
        info = _file_info(where, info, spec)
    _check_metadata(where, param, info)
    has_env = any(isinstance(m, Env) for m in info.metadata)
    role = _role(param, info, has_env)
    if has_env and role == SERVICE:
        raise RegistrationError(
            f"{where}: Env() needs a command-line type, not the service {info.name}.")
    planned = CommandParam(param, info, role, _default(param, info, role))
    for name in planned.names:
        if name in _RESERVED_OPTIONS:
            raise RegistrationError(f"{where}: '{name}' is reserved for help; rename it.")
    if planned.count and not planned.has_default:
        planned.default = 0
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
    check_spellings(f"Cannot register command '{command}'", planned)
    return planned


def spellings_of(param: CommandParam) -> tuple[str, ...]:
    """Every token naming ``param`` on the command line, ``--no-x`` forms included."""
    if param.role == FLAG and param.default is not False:
        return param.names + tuple("--no-" + n[2:] for n in param.names if n.startswith("--"))
    return param.names


def check_spellings(
    where: str, params: tuple[CommandParam, ...], taken: dict[str, str] | None = None
) -> None:
    """Raise when two parameters (or a parameter and ``taken``) share an option spelling.

    Args:
        where: The start of the message (``"Cannot register command 'x'"``).
        params: The planned parameters.
        taken: Spellings already used, mapped to what uses them (``{"--yes": "confirm="}``).
    """
    owners: dict[str, str] = dict(taken or {})
    for param in params:
        for spelling in spellings_of(param):
            owner = owners.get(spelling)
            if owner is not None:
                raise RegistrationError(
                    f"{where}: parameter '{param.name}': option '{spelling}' is already used "
                    f"by {owner}."
                )
            owners[spelling] = f"parameter '{param.name}'"


def check_exclusive(
    where: str, params: tuple[CommandParam, ...], groups: Any
) -> tuple[tuple[str, ...], ...]:
    """Validate ``mutually_exclusive=`` and return it as tuples of parameter names.

    Raises:
        RegistrationError: Not a list of groups of two or more options or flags of the
            command, a parameter in two groups, or a required option in a group.
    """
    if isinstance(groups, (list, tuple)) and groups and all(isinstance(g, str) for g in groups):
        groups = [groups]  # one group written flat: mutually_exclusive=("json", "csv")
    by_name = {p.name: p for p in params}
    seen: dict[str, int] = {}
    checked: list[tuple[str, ...]] = []
    for index, group in enumerate(groups):
        if isinstance(group, str) or not isinstance(group, (list, tuple, set, frozenset)):
            raise RegistrationError(
                f"{where}: mutually_exclusive takes groups of parameter names, e.g. "
                f"[('json', 'csv')], not {group!r}."
            )
        names = tuple(str(n).lstrip("-").replace("-", "_") for n in group)
        if len(set(names)) < 2:
            raise RegistrationError(
                f"{where}: mutually_exclusive group {tuple(group)!r} needs two or more "
                "parameters."
            )
        for name in names:
            param = by_name.get(name)
            if param is None:
                raise RegistrationError(f"{where}: mutually_exclusive names '{name}', which "
                                        "is not a parameter.")
            if param.role not in (OPTION, FLAG):
                raise RegistrationError(f"{where}: mutually_exclusive: parameter '{name}' is "
                                        "not an option or flag.")
            if param.required or not (param.has_default or param.env or param.prompt):
                raise RegistrationError(f"{where}: mutually_exclusive: parameter '{name}' is "
                                        "required, so it cannot exclude others.")
            if name in seen and seen[name] != index:
                raise RegistrationError(f"{where}: mutually_exclusive: parameter '{name}' is "
                                        "in two groups.")
            seen[name] = index
        checked.append(names)
    return tuple(checked)


def describe_type(param: CommandParam) -> str:
    """A readable type for help: ``int``, ``list[str]``..."""
    if param.info.kind == "many":
        if param.role == OPTION and param.info.nargs == "+":
            return f"{param.info.name}, repeat the option for more"
        if isinstance(param.info.nargs, int):
            return f"{param.info.nargs} {param.info.name} values"
        return f"{param.info.name}, one or more"
    return param.info.name or type_name(param.info.annotation)
