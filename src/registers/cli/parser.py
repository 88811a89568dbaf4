"""The argparse tree for a registry: parsers, help formatting, alias and spelling fixes.

``build_parser(registry, container)`` returns a ready :class:`argparse.ArgumentParser`
whose ``parse_args()`` yields a namespace with ``command`` (the canonical command path) and
one attribute per parameter of that command, defaults included (as in registers 2.1.0).
The dispatcher's own parse (:func:`parse_command`) leaves options that were not given out,
so it falls back to the handler's own default.
"""

from __future__ import annotations

import argparse
import os
import sys

from .exceptions import UnknownCommandError
from .signature import ARGUMENT, FLAG, OPTION, describe_type

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence
    from typing import Any

    from .container import DIContainer
    from .registry import CommandEntry, CommandRegistry
    from .signature import CommandParam

__all__ = ["RegistryParser", "build_parser", "format_command_table", "parse_command"]

SHELLS = ("bash", "zsh", "fish")
_PASS_THROUGH = frozenset({"-h", "--help", "--version", "--completion", "--"})
_TRUTHY = frozenset({"1", "true", "yes", "on", "y"})
_METAVARS = {"str": "TEXT"}


def _normalize_options(tokens: list[str]) -> list[str]:
    """Accept ``--dry_run`` for ``--dry-run`` (up to a ``--`` separator)."""
    fixed: list[str] = []
    for index, token in enumerate(tokens):
        if token == "--":
            return fixed + tokens[index:]
        if token.startswith("--") and "_" in token.partition("=")[0]:
            name, eq, value = token.partition("=")
            token = name.replace("_", "-") + eq + value
        fixed.append(token)
    return fixed


class RegistryParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` that knows its registry.

    It maps an alias in any spelling (``-g``, ``--greet``, ``g``) to its command, reports an
    unknown command with a suggestion, accepts underscore spellings of options, and prints
    usage errors as one line (exit status 2).
    """

    def __init__(self, *args: Any, registry: CommandRegistry | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.registry = registry
        self.group_parsers: dict[str, RegistryParser] = {}  # filled on the root parser
        self.command_parsers: dict[str, argparse.ArgumentParser] = {}
        # path -> the parameters on its command line; filled on the root parser when
        # parse_args() should hold every one of them, defaults included
        self.command_params: dict[str, list[CommandParam]] | None = None

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        tokens = _normalize_options(list(sys.argv[1:] if args is None else args))
        if self.registry is not None and tokens:
            tokens[0] = self._command_token(tokens[0])
        elif (self.command_params is not None and self.registry is not None
              and not self.registry.commands and not self.registry.groups):
            self.error("no commands are registered")
        parsed, extra = super().parse_known_args(tokens, namespace)
        if self.command_params is not None:
            for param in self.command_params.get(getattr(parsed, "command", None) or "", ()):
                if not hasattr(parsed, param.name):
                    setattr(parsed, param.name, _default(param))
        return parsed, extra

    def _command_token(self, token: str) -> str:
        assert self.registry is not None
        if token in _PASS_THROUGH or token.startswith("--completion="):
            return token
        canonical = self.registry.resolve_name(token)
        if canonical is not None:
            return canonical
        prefix = f"{self.registry.path} " if self.registry.path else ""
        suggestion = self.registry.suggest(token)
        error = UnknownCommandError(
            prefix + token, prefix + suggestion if suggestion is not None else None
        )
        self.exit(2, error.message + "\n")

    def error(self, message: str) -> Any:  # one line, exit status 2
        self.exit(2, f"{self.prog}: error: {message}\n")

    def format_help(self) -> str:
        if self.registry is not None:
            table = format_command_table(self.registry)
            self.epilog = f"commands:\n{table}" if table else "No commands are registered."
        return super().format_help()


class _Collect(argparse.Action):
    """Store several values in the handler's collection type; repeated options extend."""

    def __init__(self, option_strings: list[str], dest: str, collection: type = list,
                 **kwargs: Any) -> None:
        super().__init__(option_strings, dest, **kwargs)
        self.collection = collection

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        items = list(values)
        previous = getattr(namespace, self.dest, None)
        if self.option_strings and isinstance(previous, (list, tuple, set, frozenset)):
            items = [*previous, *items]
        setattr(namespace, self.dest, self.collection(items))


class _Completion(argparse.Action):
    """``--completion SHELL``: print a completion script and exit (imported on demand)."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        from .completion import completion_script

        registry = getattr(parser, "registry", None)
        assert registry is not None
        sys.stdout.write(completion_script(registry, str(values), prog=parser.prog))
        parser.exit(0)


def _default(param: CommandParam) -> Any:
    """The namespace value of a parameter not given on the command line."""
    if param.has_default:
        return param.default
    return False if param.role == FLAG else None


def _show(value: Any) -> str:
    if isinstance(value, (list, tuple, set, frozenset)):
        return " ".join(_show(v) for v in value)
    enum_value = getattr(value, "value", None)
    if enum_value is not None and hasattr(type(value), "__members__"):
        return enum_value if isinstance(enum_value, str) else str(getattr(value, "name", value))
    return str(value)


def _help(param: CommandParam) -> str:
    details: list[str] = []
    if param.role != FLAG:
        info = param.info
        details.append(f"choices: {', '.join(info.choices)}" if info.choices
                       else f"type: {describe_type(param)}")
    shown_default = param.has_default and param.default is not None and param.role != FLAG
    default = _show(param.default) if shown_default and not param.secret else ""
    if default:  # an empty list or string is no default worth showing
        details.append(f"default: {default}")
    if param.role == FLAG and param.default is True:
        details.append("default: on")
    if param.env:
        details.append(f"env: {param.env}")
    text = param.help
    if details:
        text = f"{text} ({'; '.join(details)})" if text else f"({'; '.join(details)})"
    return text.replace("%", "%%")


def _metavar(param: CommandParam) -> str:
    if param.info.choices:
        return "{" + ",".join(param.info.choices) + "}"
    return _METAVARS.get(param.info.name, param.info.name.upper())


def _collect_kwargs(param: CommandParam) -> dict[str, Any]:
    if param.info.kind != "many":
        return {"type": param.info.convert}
    return {"type": param.info.convert, "nargs": param.info.nargs, "action": _Collect,
            "collection": param.info.container}


def _add_argument(parser: argparse.ArgumentParser, param: CommandParam) -> None:
    parser.add_argument(param.name, help=_help(param), **_collect_kwargs(param))


def _add_option(parser: argparse.ArgumentParser, param: CommandParam) -> None:
    kwargs: dict[str, Any] = {"dest": param.name, "metavar": _metavar(param),
                              "default": argparse.SUPPRESS, "help": _help(param)}
    env_value = os.environ.get(param.env) if param.env else None
    if env_value is not None:
        kwargs["default"] = env_value  # a string default: argparse converts it like input
    elif param.env and not param.has_default:
        kwargs["required"] = True
    parser.add_argument(param.option, **kwargs, **_collect_kwargs(param))


def _add_flag(parser: argparse.ArgumentParser, param: CommandParam) -> None:
    kwargs: dict[str, Any] = {"dest": param.name, "default": argparse.SUPPRESS,
                              "help": _help(param)}
    env_value = os.environ.get(param.env) if param.env else None
    if env_value is not None:
        kwargs["default"] = env_value.strip().lower() in _TRUTHY
    negatable = param.default is not False
    action: Any = argparse.BooleanOptionalAction if negatable else "store_true"
    parser.add_argument(param.option, action=action, **kwargs)


_ADDERS: dict[str, Callable[[argparse.ArgumentParser, CommandParam], None]] = {
    ARGUMENT: _add_argument,
    OPTION: _add_option,
    FLAG: _add_flag,
}


def _is_injected(param: CommandParam, container: DIContainer | None) -> bool:
    if param.role not in _ADDERS:
        return True
    annotation = param.info.annotation
    return container is not None and isinstance(annotation, type) and container.has(annotation)


def _add_command(
    sub: Any, entry: CommandEntry, container: DIContainer | None, root: RegistryParser
) -> None:
    parser = sub.add_parser(
        entry.name,
        description=(entry.description or None),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.set_defaults(command=entry.path)
    root.command_parsers[entry.path] = parser
    shown = [param for param in entry.params if not _is_injected(param, container)]
    for param in shown:
        _ADDERS[param.role](parser, param)
    if root.command_params is not None:
        root.command_params[entry.path] = shown


def _add_children(
    parser: RegistryParser,
    registry: CommandRegistry,
    container: DIContainer | None,
    only: Iterable[str] | None,
    root: RegistryParser,
) -> None:
    sub = parser.add_subparsers(
        dest="command" if registry.parent is None else argparse.SUPPRESS,
        metavar="COMMAND",
        help=argparse.SUPPRESS,
        parser_class=RegistryParser,
        prog=parser.prog,
    )
    wanted = None if only is None else set(only)
    for name, entry in registry.commands.items():
        if wanted is None or name in wanted:
            _add_command(sub, entry, container, root)
    for name, group in registry.groups.items():
        if wanted is not None and name not in wanted:
            continue
        child = sub.add_parser(
            name,
            registry=group,
            description=group.description,
            usage="%(prog)s COMMAND [ARGS]...",
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        child.set_defaults(command=group.path)
        root.group_parsers[group.path] = child
        _add_children(child, group, container, None, root)


def build_parser(
    registry: CommandRegistry,
    container: DIContainer | None = None,
    *,
    only: Iterable[str] | None = None,
    defaults: bool = True,
) -> RegistryParser:
    """Build the argparse tree for ``registry``.

    Args:
        registry: The commands.
        container: Parameters whose type it can resolve are left off the command line.
        only: Build sub-parsers only for these top-level command names (start-up speed:
            ``run`` builds just the command being invoked). ``None`` builds all.
        defaults: Put every parameter of the chosen command in the namespace, with its
            default when it was not given (``False`` for a flag without one, ``None`` for
            an option without one). ``False`` leaves parameters not given out.

    Returns:
        A parser whose namespace has ``command`` (the canonical path, ``None`` when no
        command was given) and one attribute per parameter of that command. With
        ``defaults`` and an empty registry, ``parse_args([])`` is a usage error (exit 2).
    """
    options = " [--version]" if registry.version else ""
    root = RegistryParser(
        prog=registry.prog,
        description=registry.description,
        registry=registry,
        usage=f"%(prog)s [-h]{options} [--completion SHELL] COMMAND [ARGS]...",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    if defaults:
        root.command_params = {}
    if registry.version:
        version = registry.version.replace("%", "%%")
        root.add_argument("--version", action="version", version=f"%(prog)s {version}")
    root.add_argument(
        "--completion",
        action=_Completion,
        choices=SHELLS,
        metavar="SHELL",
        default=argparse.SUPPRESS,
        help="print a completion script for SHELL (bash, zsh, fish) and exit",
    )
    _add_children(root, registry, container, only, root)
    return root


def parse_command(
    registry: CommandRegistry, tokens: list[str], container: DIContainer | None = None
) -> tuple[str, dict[str, Any]]:
    """Parse ``tokens`` into ``(command path, arguments)``, exiting 2 on a usage error.

    With no command (or a group without a sub-command) the relevant help goes to stderr
    and the process exits with status 2.
    """
    first = registry.resolve_name(tokens[0]) if tokens else None
    parser = build_parser(registry, container, only=(first,) if first else (), defaults=False)
    if not tokens:
        parser.print_help(sys.stderr)
        parser.exit(2)
    namespace, extra = parser.parse_known_args(tokens)
    values = dict(vars(namespace))
    path = values.pop("command", None)
    if extra:
        owner = parser.command_parsers.get(path) or parser.group_parsers.get(path) or parser
        owner.error(f"unrecognized arguments: {' '.join(extra)}")
    if path is None:
        parser.print_help(sys.stderr)
        parser.exit(2)
    group_parser = parser.group_parsers.get(path)
    if group_parser is not None:
        group_parser.print_help(sys.stderr)
        group_parser.exit(2)
    return path, values


def _command_rows(registry: CommandRegistry) -> list[tuple[str, str]]:
    rows = [(", ".join((e.name, *e.ops)), e.help_text) for e in registry.commands.values()]
    rows += [(", ".join((g.name, *g.ops)), g.help_text) for g in registry.groups.values()]
    return rows


def format_command_table(registry: CommandRegistry, indent: int = 2) -> str:
    """The command listing used by ``--help`` and ``list_commands()``.

    Each line shows the name and aliases as written (``greet, -g, --greet``) and the
    command's summary.
    """
    rows = _command_rows(registry)
    if not rows:
        return ""
    width = min(max(len(left) for left, _ in rows), 30)
    lines: list[str] = []
    for left, summary in rows:
        if not summary:
            lines.append(" " * indent + left)
        elif len(left) > width:
            lines.append(" " * indent + left)
            lines.append(" " * (indent + width + 2) + summary)
        else:
            lines.append(f"{' ' * indent}{left.ljust(width)}  {summary}")
    return "\n".join(lines)


