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
from .terminal import BOLD, RED, colour_enabled, style, write_error_line

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence
    from typing import Any

    from .container import DIContainer
    from .registry import CommandEntry, CommandRegistry
    from .signature import CommandParam

__all__ = [
    "COMMAND_DEST",
    "ROOT_PREFIX",
    "YES_DEST",
    "RegistryParser",
    "build_parser",
    "command_index",
    "format_command_table",
    "help_width",
    "parse_command",
    "split_root_values",
]

# namespace keys of the root callback's options (kept apart from the command's own) and
# of ``--yes``; neither is ever a handler parameter name
ROOT_PREFIX = "registers.root:"
YES_DEST = "registers:yes"

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

    def _format_action_invocation(self, action: argparse.Action) -> str:
        # "-o, --output PATH" (Click's form and Python 3.13's) on every Python: 3.10 to 3.12
        # repeat the metavar ("-o PATH, --output PATH").
        if not action.option_strings or action.nargs == 0:
            return super()._format_action_invocation(action)
        metavar = self._format_args(action, self._get_default_metavar_for_optional(action))
        return f"{', '.join(action.option_strings)} {metavar}"


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
        self.root_options: dict[str, bool] = {}  # root callback spelling -> takes a value
        self._intermixing = False
        self.single = False  # the whole program is one command (CommandRegistry.single)
        # path -> the parameters on its command line; filled on the root parser when
        # parse_args() should hold every one of them, defaults included (as in 2.1.0)
        self.command_params: dict[str, list[CommandParam]] | None = None

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        if self.command_params is None:
            return self._parse_known(args, namespace)
        if (not (sys.argv[1:] if args is None else args) and self.registry is not None
                and not self.registry.commands and not self.registry.groups):
            self.error("no commands are registered")
        parsed, extra = self._parse_known(args, namespace)
        for param in self.command_params.get(getattr(parsed, COMMAND_DEST, None) or "", ()):
            if not hasattr(parsed, param.name):
                setattr(parsed, param.name, _default(param))
        return parsed, extra

    def _parse_known(
        self, args: Sequence[str] | None, namespace: argparse.Namespace | None
    ) -> tuple[argparse.Namespace, list[str]]:
        tokens = _normalize_options(list(sys.argv[1:] if args is None else args))
        index = command_index(tokens, self.root_options)
        if self.registry is not None and index is not None:
            tokens[index] = self._command_token(tokens[index])
        if (self.registry is None or self.single) and not self._intermixing:
            tokens = self._attach_dash_values(tokens)
        if (self.registry is None or self.single) and not self._intermixing \
                and self._get_positional_actions():
            # a command's parser: options may come before, between or after positionals
            return self._parse_intermixed(tokens, namespace)
        return super().parse_known_args(tokens, namespace)

    def _parse_intermixed(
        self, tokens: list[str], namespace: argparse.Namespace | None
    ) -> tuple[argparse.Namespace, list[str]]:
        self._intermixing = True
        # argparse formats the whole usage up front, only for error messages that print it;
        # ours never do, and with many options that formatting is most of the parse time
        # (start-up, P1). Help needs the real usage, so it keeps the slow path.
        placeholder = self.usage is None and not _asks_help(tokens)
        if placeholder:
            self.usage = "%(prog)s"
        try:
            return super().parse_known_intermixed_args(tokens, namespace)
        finally:
            self._intermixing = False
            if placeholder:
                self.usage = None

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
        self.exit(2, f"{style(error.message, RED, sys.stderr)}\n{self.try_help()}\n")

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
        write_error_line(sys.stderr, self.prog, message)
        self.exit(2, f"{self.try_help()}\n")

    def suggest_option(self, token: str) -> str | None:
        """The option of this parser closest to a mistyped ``token``, if one is close."""
        import difflib

        name = token.partition("=")[0]
        if not name.startswith("-") or self._negative_number_matcher.match(name):
            return None
        known = [o for o in self._option_string_actions if o.startswith("--") or len(o) == 2]
        matches = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
        return matches[0] if matches else None

    def print_help(self, file: Any = None) -> None:
        stream = sys.stdout if file is None else file
        self._print_message(_colour_help(self.format_help(), stream), stream)

    def format_help(self) -> str:
        if self.registry is not None and not self.single:
            table = format_command_table(self.registry, width=help_width() - 2)
            self.epilog = f"commands:\n{table}" if table else "No commands are registered."
        return super().format_help()


def _asks_help(tokens: list[str]) -> bool:
    """Whether ``tokens`` may ask for help (``--help``, or ``-h`` alone or in a cluster)."""
    for token in tokens:
        if token == "--":
            return False
        if token == "--help" or (token[:1] == "-" and token[1:2] != "-" and "h" in token):
            return True
    return False


def _colour_help(text: str, stream: Any) -> str:
    """Headings (``usage:``, ``options:``, ``commands:``) in bold on a terminal."""
    if not colour_enabled(stream):
        return text
    lines = text.split("\n")
    for index, line in enumerate(lines):
        if line.startswith("usage:"):
            lines[index] = style("usage:", BOLD, stream) + line[len("usage:"):]
        elif line.endswith(":") and line[:1].isalpha() and " " not in line.rstrip(":")[-12:]:
            lines[index] = style(line, BOLD, stream)
    return "\n".join(lines)


def command_index(tokens: list[str], root_options: dict[str, bool]) -> int | None:
    """Where the command word is in ``tokens``: after any root callback options.

    Args:
        tokens: The command line.
        root_options: The root callback's spellings, each mapped to whether it takes a
            value (``--config FILE``) or not (``--verbose``, ``-vv``).

    Returns:
        The index of the first token that is not a root option (``None``: there is none).
    """
    index = 0
    while index < len(tokens):
        token = tokens[index]
        if token == "--" or token in _PASS_THROUGH or not token.startswith("-") or token == "-":
            return index
        if token.startswith("--"):
            name, eq, _ = token.partition("=")
            if name not in root_options:
                return index
            index += 2 if root_options[name] and not eq else 1
            continue
        short = token[:2]
        if short not in root_options:
            return index
        if root_options[short]:  # -cFILE or -c FILE
            index += 2 if len(token) == 2 else 1
            continue
        if any(f"-{c}" not in root_options or root_options[f"-{c}"] for c in token[1:]):
            return index
        index += 1
    return None


def split_root_values(values: dict[str, Any]) -> dict[str, Any]:
    """Remove the root callback's values from ``values`` and return them by parameter."""
    root = {k[len(ROOT_PREFIX):]: v for k, v in values.items() if k.startswith(ROOT_PREFIX)}
    for name in root:
        del values[ROOT_PREFIX + name]
    return root


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
    if param.hidden:
        return argparse.SUPPRESS
    details: list[str] = []
    if param.count:
        short = _short(param)
        details.append(f"repeatable, e.g. {short}{short[1] * 2}" if short else "repeatable")
    elif param.file is not None:
        details.append(f"file, '-' for {'stdin' if param.file.reads else 'stdout'}")
    elif param.role != FLAG:
        info = param.info
        details.append(f"choices: {', '.join(info.choices)}" if info.choices
                       else f"type: {describe_type(param)}")
    if param.count:
        shown_default = param.default not in (0, None)
    else:
        shown_default = (param.has_default and param.default is not None
                         and param.role != FLAG and param.file is None)
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
    if param.prompt is not None:
        details.append("prompted when missing")
    elif _must_give(param):
        details.append("required")
    if param.deprecated:
        details.append(_deprecation(param.deprecated))
    text = param.help
    if details:
        text = f"{text} ({'; '.join(details)})" if text else f"({'; '.join(details)})"
    return text.replace("%", "%%")


def _short(param: CommandParam) -> str | None:
    return next((n for n in param.names if not n.startswith("--")), None)


def _deprecation(deprecated: bool | str) -> str:
    return f"deprecated; {deprecated}" if isinstance(deprecated, str) else "deprecated"


def _must_give(param: CommandParam) -> bool:
    """An option argparse itself must insist on (env and prompt can still supply it)."""
    if param.role != OPTION or param.prompt is not None:
        return False
    return param.required or not param.has_default


def _metavar(param: CommandParam) -> str:
    if param.metavar:
        return param.metavar
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


_DEPRECATED: dict[type, type] = {}


def _warn_when_used(action: argparse.Action, deprecated: bool | str) -> None:
    """Make ``action`` print a one-line warning on stderr when its option is given."""
    base = type(action)
    cls = _DEPRECATED.get(base)
    if cls is None:

        def __call__(self: Any, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                     values: Any, option_string: str | None = None) -> None:
            if option_string is not None and not getattr(self, "registers_warned", False):
                self.registers_warned = True
                notice = self.registers_deprecated
                suffix = f"; {notice}" if isinstance(notice, str) else ""
                write_error_line(sys.stderr, parser.prog,
                                 f"option '{option_string}' is deprecated{suffix}", "warning")
            base.__call__(self, parser, namespace, values, option_string)

        cls = type(f"Deprecated{base.__name__}", (base,), {"__call__": __call__})
        _DEPRECATED[base] = cls
    action.__class__ = cls
    action.registers_deprecated = deprecated  # type: ignore[attr-defined]


def _dest(param: CommandParam, root: bool) -> str:
    return ROOT_PREFIX + param.name if root else param.name


def _add_argument(parser: Any, param: CommandParam, root: bool = False) -> argparse.Action:
    action: argparse.Action = parser.add_argument(param.name, help=_help(param),
                                                  **_collect_kwargs(param))
    return action


def _add_option(parser: Any, param: CommandParam, root: bool = False) -> argparse.Action:
    kwargs: dict[str, Any] = {"dest": _dest(param, root), "default": argparse.SUPPRESS,
                              "help": _help(param)}
    # an environment value is read after parsing (parse_command), so its errors name it
    if _must_give(param) and not (param.env and os.environ.get(param.env)):
        kwargs["required"] = True
    if param.count:
        kwargs.pop("required", None)
        action: argparse.Action = parser.add_argument(*param.names, action="count", **kwargs)
        return action
    kwargs["metavar"] = _metavar(param)
    action = parser.add_argument(*param.names, **kwargs, **_collect_kwargs(param, option=True))
    return action


def _add_flag(parser: Any, param: CommandParam, root: bool = False) -> argparse.Action:
    kwargs: dict[str, Any] = {"dest": _dest(param, root), "default": argparse.SUPPRESS,
                              "help": _help(param)}
    negatable = param.default is not False
    kind: Any = argparse.BooleanOptionalAction if negatable else "store_true"
    action: argparse.Action = parser.add_argument(*param.names, action=kind, **kwargs)
    return action


def add_params(
    parser: argparse.ArgumentParser,
    params: Iterable[CommandParam],
    container: DIContainer | None,
    exclusive: tuple[tuple[str, ...], ...] = (),
    root: bool = False,
) -> None:
    """Add each command-line parameter to ``parser`` (services and prompt-only ones skipped).

    Args:
        parser: The command's (or, for ``root``, the program's) parser.
        params: The planned parameters.
        container: Parameters it can resolve stay off the command line.
        exclusive: Groups of parameter names that exclude each other.
        root: The root callback's options: stored apart from the command's values.
    """
    groups: dict[str, Any] = {}
    for names in exclusive:
        group = parser.add_mutually_exclusive_group()
        groups.update(dict.fromkeys(names, group))
    for param in params:
        if _is_injected(param, container):
            continue
        action = _ADDERS[param.role](groups.get(param.name, parser), param, root)
        if param.deprecated and param.role != ARGUMENT:
            _warn_when_used(action, param.deprecated)


def _add_yes(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--yes", action="store_true", dest=YES_DEST, default=argparse.SUPPRESS,
                        help="answer yes to the confirmation question")


_ADDERS: dict[str, Callable[[Any, CommandParam, bool], argparse.Action]] = {
    ARGUMENT: _add_argument,
    OPTION: _add_option,
    FLAG: _add_flag,
}


def _default(param: CommandParam) -> Any:
    """The namespace value of a parameter not given on the command line (2.1.0)."""
    if param.has_default:
        return param.default
    return False if param.role == FLAG else None


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
    add_params(parser, entry.params, container, entry.exclusive)
    if root.command_params is not None:
        root.command_params[entry.path] = [
            p for p in entry.params if not _is_injected(p, container)
        ]
    if entry.confirm:
        _add_yes(parser)


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
    defaults: bool = True,
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
    single = registry.single_command
    if single is not None:
        return _build_single(registry, registry.commands[single], container)
    options = " [--version]" if registry.version else ""
    callback = registry.root_callback
    if callback is not None and callback.params:
        options += " [OPTIONS]"
    root = RegistryParser(
        prog=registry.prog,
        description=registry.description,
        registry=registry,
        usage=f"%(prog)s [-h]{options} [--completion SHELL] COMMAND [ARGS]...",
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
    root.set_defaults(command=None)
    if callback is not None:
        add_params(root, callback.params, container, callback.exclusive, root=True)
        root.root_options = _root_spellings(registry)
    _add_children(root, registry, container, only, root)
    return root


def _spellings(param: CommandParam) -> tuple[str, ...]:
    from .signature import spellings_of

    return spellings_of(param)


def _build_single(
    registry: CommandRegistry, entry: CommandEntry, container: DIContainer | None
) -> RegistryParser:
    """A one-command program: the command's arguments directly after the program name."""
    parser = RegistryParser(
        prog=registry.prog,
        description=entry.description or registry.description,
    )
    parser.single = True
    if registry.version:
        version = registry.version.replace("%", "%%")
        parser.add_argument("--version", action="version", version=f"%(prog)s {version}")
    parser.set_defaults(**{COMMAND_DEST: entry.path})
    parser.command_parsers[entry.path] = parser
    add_params(parser, entry.params, container, entry.exclusive)
    if entry.confirm:
        _add_yes(parser)
    return parser


def parse_command(
    registry: CommandRegistry, tokens: list[str], container: DIContainer | None = None
) -> tuple[str, dict[str, Any]]:
    """Parse ``tokens`` into ``(command path, arguments)``, exiting 2 on a usage error.

    With no command (or a group without a sub-command) the relevant help goes to stderr
    and the process exits with status 2. Options not given on the command line are filled
    from their environment variable (``Env``) when it is set and not empty.
    """
    single = registry.single_command is not None
    index = None if single else command_index(tokens, _root_spellings(registry))
    first = registry.resolve_name(tokens[index]) if index is not None else None
    parser = build_parser(registry, container, only=(first,) if first else (), defaults=False)
    if not tokens and not single:
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
    _fill_env(command_parser, entry.params, values, container, "")
    callback = registry.root_callback
    if callback is not None:
        _fill_env(parser, callback.params, values, container, ROOT_PREFIX)
    return path, values


def _fill_env(
    parser: argparse.ArgumentParser,
    params: Iterable[CommandParam],
    values: dict[str, Any],
    container: DIContainer | None,
    prefix: str,
) -> None:
    for param in params:
        key = prefix + param.name
        if param.env and key not in values and not _is_injected(param, container):
            text = os.environ.get(param.env, "")
            if text:  # an empty variable counts as unset
                values[key] = _from_env(parser, param, param.env, text)


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


def _root_spellings(registry: CommandRegistry) -> dict[str, bool]:
    callback = registry.root_callback
    if callback is None:
        return {}
    return {spelling: p.role == OPTION and not p.count
            for p in callback.params for spelling in _spellings(p)}


def _summary(entry: CommandEntry) -> str:
    if not entry.deprecated:
        return entry.help_text
    return f"{entry.help_text} ({_deprecation(entry.deprecated)})".strip()


def _command_rows(registry: CommandRegistry) -> list[tuple[str, str]]:
    rows = [(", ".join((e.name, *e.ops)), _summary(e))
            for e in registry.commands.values() if not e.hidden]
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
