"""The argparse tree for a registry: parsers, help formatting, alias and spelling fixes.

``build_parser(registry, container)`` returns a ready :class:`argparse.ArgumentParser`
whose ``parse_args()`` yields a namespace with ``command`` (the canonical command path) and
one attribute per command-line parameter given. Options left out are absent from the
namespace, so the dispatcher falls back to the handler's own default.
"""

from __future__ import annotations

import argparse
import os
import re
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

__all__ = [
    "COMMAND_DEST",
    "RegistryParser",
    "build_parser",
    "format_command_table",
    "help_width",
    "parse_command",
]

SHELLS = ("bash", "zsh", "fish")
# The namespace attribute holding the command path: not an identifier, so a handler
# parameter (even one named ``command``) can never collide with it. The namespace also has
# the documented ``command`` attribute (the same path), except for a command that has a
# parameter of that name: there ``command`` is the parameter.
COMMAND_DEST = "registers:command"
_PASS_THROUGH = frozenset({"-h", "--help", "--version", "--completion", "--"})
TRUTHY = frozenset({"1", "true", "yes", "on", "y"})
FALSY = frozenset({"0", "false", "no", "off", "n"})
_METAVARS = {"str": "TEXT"}


class _NegativeNumber:
    """argparse's "looks like a negative number" test, for every notation Python reads.

    ``-1``, ``-1_000``, ``-.5``, ``-1.5e3``, ``-1E-3``, ``-3/4``, ``-inf``, ``-nan``: a value,
    never an option name. (No regular expression: this runs on the start-up path.)
    """

    @staticmethod
    def match(text: str) -> bool:
        if len(text) < 2 or text[0] != "-" or text[1] in "-+" or text[1].isspace():
            return False
        number, slash, denominator = text[1:].partition("/")
        if slash:
            return number.isdigit() and denominator.isdigit()
        if number[-1].isspace():
            return False
        try:
            float(number)
        except ValueError:
            return False
        return True

    fullmatch = match


_NEGATIVE_NUMBER = _NegativeNumber()


def help_width() -> int:
    """Columns for help text: ``$COLUMNS``, else the terminal's width, else 80."""
    columns = os.environ.get("COLUMNS", "")
    if columns.isdigit() and int(columns) > 0:
        return max(int(columns), 40)
    try:
        if sys.stdout.isatty():
            return max(os.get_terminal_size(sys.stdout.fileno()).columns, 40)
    except (AttributeError, OSError, ValueError):
        pass
    return 80


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Help wrapped to :func:`help_width`; description paragraphs re-flowed.

    A paragraph whose lines are indented (an example, a table) is kept as written.
    """

    def __init__(self, prog: str, indent_increment: int = 2, max_help_position: int = 24,
                 width: int | None = None) -> None:
        super().__init__(prog, indent_increment, max_help_position,
                         help_width() - 2 if width is None else width)

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        return "\n".join(fill_paragraphs(text, width, indent).splitlines())


def fill_paragraphs(text: str, width: int, indent: str = "") -> str:
    """Re-flow each blank-line separated paragraph of ``text`` to ``width`` columns."""
    import textwrap

    out: list[str] = []
    for paragraph in re.split(r"\n[ \t]*\n", text.strip("\n")):
        lines = paragraph.splitlines()
        if any(line[:1].isspace() for line in lines):
            out.append("\n".join(indent + line for line in lines))
            continue
        out.append(textwrap.fill(" ".join(line.strip() for line in lines), width,
                                 initial_indent=indent, subsequent_indent=indent))
    return "\n\n".join(out)


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
    unknown command with a suggestion, accepts underscore spellings of options, never takes
    a prefix for an option (``--verb`` is not ``--verbose``), takes negative numbers in any
    notation as values, lets a command's options and positionals be intermixed, and prints
    a usage error as one line plus a ``Try '<prog> --help' for help.`` line (exit status 2).
    """

    def __init__(self, *args: Any, registry: CommandRegistry | None = None, **kwargs: Any) -> None:
        kwargs["allow_abbrev"] = False
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)
        self._negative_number_matcher = _NEGATIVE_NUMBER  # type: ignore[assignment]
        self.registry = registry
        self.group_parsers: dict[str, RegistryParser] = {}  # filled on the root parser
        self.command_parsers: dict[str, argparse.ArgumentParser] = {}
        self._intermixing = False

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        tokens = _normalize_options(list(sys.argv[1:] if args is None else args))
        if self.registry is not None and tokens:
            tokens[0] = self._command_token(tokens[0])
        if self.registry is None and not self._intermixing:
            # a command's parser: options may come before, between or after positionals
            tokens = self._attach_dash_values(tokens)
            self._intermixing = True
            try:
                return super().parse_known_intermixed_args(tokens, namespace)
            finally:
                self._intermixing = False
        return super().parse_known_args(tokens, namespace)

    def _attach_dash_values(self, tokens: list[str]) -> list[str]:
        """``--name -x`` gives ``-x`` to ``--name`` (as Click does), unless ``-x`` is an option.

        argparse would refuse any value that starts with ``-``.
        """
        fixed: list[str] = []
        index = 0
        while index < len(tokens):
            token = tokens[index]
            if token == "--":
                return fixed + tokens[index:]
            action = self._option_string_actions.get(token)
            following = tokens[index + 1] if index + 1 < len(tokens) else None
            if (action is not None and action.nargs is None and following is not None
                    and following.startswith("-") and following != "--"
                    and following.partition("=")[0] not in self._option_string_actions):
                fixed.append(f"{token}={following}")
                index += 2
                continue
            fixed.append(token)
            index += 1
        return fixed

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
        self.exit(2, f"{error.message}\n{self.try_help()}\n")

    def _print_message(self, message: str, file: Any = None) -> None:
        # argparse swallows write errors (help into a full disk would exit 0, silently);
        # run() reports them like any other output error
        if message:
            stream = file or sys.stderr
            try:
                stream.write(message)
                stream.flush()
            except OSError as exc:
                exc.registers_output = True  # type: ignore[attr-defined]
                raise

    def try_help(self) -> str:
        """The line after every usage error: ``Try 'app greet --help' for help.``"""
        return f"Try '{self.prog} --help' for help."

    def error(self, message: str) -> Any:  # one line plus the Try line, exit status 2
        self.exit(2, f"{self.prog}: error: {message}\n{self.try_help()}\n")

    def suggest_option(self, token: str) -> str | None:
        """The option of this parser closest to a mistyped ``token``, if one is close."""
        import difflib

        name = token.partition("=")[0]
        if not name.startswith("-") or self._negative_number_matcher.match(name):
            return None
        known = [o for o in self._option_string_actions if o.startswith("--") or len(o) == 2]
        matches = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
        return matches[0] if matches else None

    def format_help(self) -> str:
        if self.registry is not None:
            table = format_command_table(self.registry, width=help_width() - 2)
            self.epilog = f"commands:\n{table}" if table else "No commands are registered."
        return super().format_help()


class _Collect(argparse.Action):
    """Collect values in the handler's collection type.

    A positional list takes all its values at once. A list option takes one value per
    occurrence (``--tag a --tag b``); a fixed-size tuple option takes its N values per
    occurrence and, like any other option given twice, the last occurrence wins.
    """

    def __init__(self, option_strings: list[str], dest: str, collection: type = list,
                 repeat: bool = False, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, **kwargs)
        self.collection = collection
        self.repeat = repeat

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        items = list(values) if isinstance(values, list) else [values]
        previous = getattr(namespace, self.dest, None)  # options default to SUPPRESS
        if self.repeat and previous is not None:
            items = [*previous, *items]
        setattr(namespace, self.dest, self.collection(items))


class _Completion(argparse.Action):
    """``--completion SHELL``: print a completion script and exit (imported on demand)."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        from .completion import completion_script

        registry = getattr(parser, "registry", None)
        assert registry is not None
        parser._print_message(completion_script(registry, str(values), prog=parser.prog),
                              sys.stdout)
        parser.exit(0)


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
    if default and "://" in default:
        from .middleware import redact_url

        default = redact_url(default)
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


def _converter(param: CommandParam) -> Any:
    convert = param.info.convert
    if not param.secret or convert is None:
        return convert
    return hide_value(convert)


def hide_value(convert: Callable[[str], Any]) -> Callable[[str], Any]:
    """Wrap ``convert`` so a rejected value is not echoed in the error (secrets)."""

    def hidden(text: str) -> Any:
        try:
            return convert(text)
        except argparse.ArgumentTypeError as exc:
            raise argparse.ArgumentTypeError(str(exc).replace(repr(text), "***")) from None

    hidden.__name__ = getattr(convert, "__name__", "value")
    return hidden


def _collect_kwargs(param: CommandParam, option: bool = False) -> dict[str, Any]:
    if param.info.kind != "many":
        return {"type": _converter(param)}
    repeat = option and param.info.nargs == "+"
    return {"type": _converter(param), "nargs": None if repeat else param.info.nargs,
            "action": _Collect, "collection": param.info.container, "repeat": repeat}


def _add_argument(parser: argparse.ArgumentParser, param: CommandParam) -> None:
    parser.add_argument(param.name, help=_help(param), **_collect_kwargs(param))


def _add_option(parser: argparse.ArgumentParser, param: CommandParam) -> None:
    kwargs: dict[str, Any] = {"dest": param.name, "metavar": _metavar(param),
                              "default": argparse.SUPPRESS, "help": _help(param)}
    # an environment value is read after parsing (parse_command), so its errors name it
    if param.env and not param.has_default and not os.environ.get(param.env):
        kwargs["required"] = True
    parser.add_argument(param.option, **kwargs, **_collect_kwargs(param, option=True))


def _add_flag(parser: argparse.ArgumentParser, param: CommandParam) -> None:
    kwargs: dict[str, Any] = {"dest": param.name, "default": argparse.SUPPRESS,
                              "help": _help(param)}
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
    )
    parser.set_defaults(**{COMMAND_DEST: entry.path})
    if not any(p.name == "command" for p in entry.params):
        parser.set_defaults(command=entry.path)
    root.command_parsers[entry.path] = parser
    for param in entry.params:
        if not _is_injected(param, container):
            _ADDERS[param.role](parser, param)


def _add_children(
    parser: RegistryParser,
    registry: CommandRegistry,
    container: DIContainer | None,
    only: Iterable[str] | None,
    root: RegistryParser,
) -> None:
    sub = parser.add_subparsers(
        dest=COMMAND_DEST if registry.parent is None else argparse.SUPPRESS,
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
        )
        child.set_defaults(**{COMMAND_DEST: group.path, "command": group.path})
        root.group_parsers[group.path] = child
        _add_children(child, group, container, None, root)


def build_parser(
    registry: CommandRegistry,
    container: DIContainer | None = None,
    *,
    only: Iterable[str] | None = None,
) -> RegistryParser:
    """Build the argparse tree for ``registry``.

    Args:
        registry: The commands.
        container: Parameters whose type it can resolve are left off the command line.
        only: Build sub-parsers only for these top-level command names (start-up speed:
            ``run`` builds just the command being invoked). ``None`` builds all.

    Returns:
        A parser whose namespace has ``command`` (the canonical path, ``None`` when no
        command was given; for a command with a parameter named ``command``, that
        parameter) and one attribute per parameter given on the command line.
    """
    options = " [--version]" if registry.version else ""
    root = RegistryParser(
        prog=registry.prog,
        description=registry.description,
        registry=registry,
        usage=f"%(prog)s [-h]{options} [--completion SHELL] COMMAND [ARGS]...",
    )
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
    root.set_defaults(command=None)
    _add_children(root, registry, container, only, root)
    return root


def parse_command(
    registry: CommandRegistry, tokens: list[str], container: DIContainer | None = None
) -> tuple[str, dict[str, Any]]:
    """Parse ``tokens`` into ``(command path, arguments)``, exiting 2 on a usage error.

    With no command (or a group without a sub-command) the relevant help goes to stderr
    and the process exits with status 2. Options not given on the command line are filled
    from their environment variable (``Env``) when it is set and not empty.
    """
    first = registry.resolve_name(tokens[0]) if tokens else None
    parser = build_parser(registry, container, only=(first,) if first else ())
    if not tokens:
        parser.print_help(sys.stderr)
        parser.exit(2)
    namespace, extra = parser.parse_known_args(tokens)
    values = dict(vars(namespace))
    path = values.pop(COMMAND_DEST, None)
    if extra:
        owner = parser.command_parsers.get(path) or parser.group_parsers.get(path) or parser
        _unrecognized(owner, extra)
    if path is None:
        parser.print_help(sys.stderr)
        parser.exit(2)
    group_parser = parser.group_parsers.get(path)
    if group_parser is not None:
        group_parser.print_help(sys.stderr)
        group_parser.exit(2)
    command_parser = parser.command_parsers[path]
    entry = registry.get(path)
    if values.get("command") is None or not any(p.name == "command" for p in entry.params):
        values.pop("command", None)  # the documented attribute, not a parameter's value
    for param in entry.params:
        if param.env and param.name not in values and not _is_injected(param, container):
            text = os.environ.get(param.env, "")
            if text:  # an empty variable counts as unset
                values[param.name] = _from_env(command_parser, param, param.env, text)
    return path, values


def _unrecognized(parser: argparse.ArgumentParser, extra: list[str]) -> None:
    message = f"unrecognized arguments: {' '.join(extra)}"
    if isinstance(parser, RegistryParser):
        for token in extra:
            suggestion = parser.suggest_option(token)
            if suggestion is not None:
                message += f". Did you mean '{suggestion}'?"
                break
    parser.error(message)


def _from_env(parser: argparse.ArgumentParser, param: CommandParam, name: str, text: str) -> Any:
    """Convert an environment variable's text like the command line would, or exit 2."""
    shown = "***" if param.secret else repr(text)
    where = f"environment variable {name}"
    if param.role == FLAG:
        folded = text.strip().lower()
        if folded in TRUTHY or folded in FALSY:
            return folded in TRUTHY
        spellings = "/".join(sorted(TRUTHY)) + " or " + "/".join(sorted(FALSY))
        parser.error(f"{where}: invalid boolean value: {shown} (use {spellings})")
    convert = _converter(param)
    assert convert is not None
    try:
        if param.info.kind != "many":
            return convert(text)
        # Click's rule: whitespace separates list items, os.pathsep for paths
        items = text.split(os.pathsep) if param.info.name == "path" else text.split()
        nargs = param.info.nargs
        if isinstance(nargs, int) and len(items) != nargs:
            parser.error(f"{where}: expected {nargs} values, got {len(items)}")
        container = param.info.container or list
        return container(convert(item) for item in items)
    except argparse.ArgumentTypeError as exc:
        parser.error(f"{where}: {exc}")


def _command_rows(registry: CommandRegistry) -> list[tuple[str, str]]:
    rows = [(", ".join((e.name, *e.ops)), e.help_text) for e in registry.commands.values()]
    rows += [(", ".join((g.name, *g.ops)), g.help_text) for g in registry.groups.values()]
    return rows


def format_command_table(registry: CommandRegistry, indent: int = 2,
                         width: int | None = None) -> str:
    """The command listing used by ``--help`` and ``list_commands()``.

    Each line shows the name and aliases as written (``greet, -g, --greet``) and the
    command's summary, wrapped to ``width`` columns (default: :func:`help_width` - 2).
    """
    import textwrap

    rows = _command_rows(registry)
    if not rows:
        return ""
    total = help_width() - 2 if width is None else width
    column = min(max(len(left) for left, _ in rows), 30)
    hang = " " * (indent + column + 2)
    lines: list[str] = []
    for left, summary in rows:
        if not summary:
            lines.append(" " * indent + left)
            continue
        wrapped = textwrap.wrap(" ".join(summary.split()), max(total - len(hang), 20))
        if len(left) > column:
            lines.append(" " * indent + left)
            lines.extend(hang + part for part in wrapped)
            continue
        lines.append(f"{' ' * indent}{left.ljust(column)}  {wrapped[0]}")
        lines.extend(hang + part for part in wrapped[1:])
    return "\n".join(lines)
