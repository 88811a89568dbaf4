"""``CommandRegistry``: register commands, look them up, merge registries, run and invoke.

Example:
    >>> from registers.cli import CommandRegistry
    >>> cli = CommandRegistry(prog="app")
    >>> @cli.register(ops=["-g", "--greet"], description="Greet someone by name")
    ... def greet(name: str) -> str:
    ...     return f"Hello, {name}!"
    >>> cli.invoke(["-g", "Alice"]).stdout
    'Hello, Alice!\\n'
"""

from __future__ import annotations

import sys

from .exceptions import (
    CommandError,
    DuplicateCommandError,
    FrameworkError,
    RegistrationError,
    UnknownCommandError,
)
from .signature import check_exclusive, check_spellings, plan_params, spellings_of
from .utils.reflection import (
    is_async_callable,
    is_async_generator_callable,
    parse_docstring,
    unwrap,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from typing import Any, TypeVar

    from .container import DIContainer
    from .middleware import MiddlewareChain
    from .signature import CommandParam
    from .testing import InvokeResult

    F = TypeVar("F", bound=Callable[..., Any])
    _EntryBase = tuple[str, Callable[..., Any], str, str, tuple[str, ...]]
else:
    _EntryBase = tuple

if not TYPE_CHECKING:  # typing stays unimported at run time
    def overload(func: object) -> object:
        return func
else:
    from typing import overload

__all__ = ["CommandEntry", "CommandRegistry"]

# top-level options that are never taken for a command alias
RESERVED_OPTIONS = frozenset({"-h", "--help", "--version", "--completion"})


def _bare(spelling: str) -> str:
    return spelling.lstrip("-")


class CommandEntry(_EntryBase):
    """A registered command: the tuple ``(name, handler, help_text, description, ops)``.

    Attributes:
        name: The canonical command name.
        handler: The registered function, unchanged.
        help_text: The one-line summary shown in command listings.
        description: The longer text shown in the command's own ``--help``.
        ops: The aliases as written (``("-g", "--greet")``).
        path: The full name including groups (``"deploy service"``).
        params: How each handler parameter maps to the command line.
        is_async: Whether the handler is a coroutine function.
        confirm: The question asked before running (``--yes`` skips it), or ``None``.
        hidden: Left out of help, suggestions and completion (still runs).
        deprecated: ``False``, ``True`` or what to use instead; running it warns.
        exclusive: Groups of parameter names that exclude each other.
        is_async_gen: Whether the handler is an async generator function (its items are
            printed as they come, like a generator's).
    """

    path: str
    params: tuple[CommandParam, ...]
    is_async: bool
    is_async_gen: bool
    confirm: str | None = None
    hidden: bool = False
    deprecated: bool | str = False
    exclusive: tuple[tuple[str, ...], ...] = ()
    provides: Any = None  # root callbacks only: the type their result is registered as

    def __new__(
        cls,
        name: str,
        handler: Callable[..., Any],
        help_text: str,
        description: str,
        ops: tuple[str, ...],
    ) -> CommandEntry:
        return tuple.__new__(cls, (name, handler, help_text, description, ops))

    @property
    def name(self) -> str:
        return self[0]

    @property
    def handler(self) -> Callable[..., Any]:
        return self[1]

    @property
    def help_text(self) -> str:
        return self[2]

    @property
    def description(self) -> str:
        return self[3]

    @property
    def ops(self) -> tuple[str, ...]:
        return self[4]

    def __repr__(self) -> str:
        return f"CommandEntry(name={self.name!r}, ops={self.ops!r})"


def _texts(func: Callable[..., Any], description: str, help_text: str) -> tuple[str, str]:
    if not description and not help_text:
        description = parse_docstring(getattr(unwrap(func), "__doc__", None))[0]
    return help_text or description, description or help_text


def _copy_entry(entry: CommandEntry) -> CommandEntry:
    copy = CommandEntry(*entry)
    copy.params, copy.is_async = entry.params, entry.is_async
    copy.is_async_gen = entry.is_async_gen
    copy.confirm, copy.hidden = entry.confirm, entry.hidden
    copy.deprecated, copy.exclusive = entry.deprecated, entry.exclusive
    return copy


def _needs_preparation(entry: CommandEntry) -> bool:
    """Whether running ``entry`` goes through ``invocation`` (kept out of a plain start-up)."""
    if entry.confirm or entry.deprecated:
        return True
    return any(p.prompt is not None or p.file is not None for p in entry.params)


def _check_ops(new: str, ops: Iterable[str]) -> tuple[str, ...]:
    if isinstance(ops, str):
        ops = (ops,)
    checked = tuple(ops)
    for op in checked:
        if not isinstance(op, str) or not _bare(op) or any(c.isspace() for c in op):
            raise RegistrationError(f"Cannot register command '{new}': invalid alias {op!r}.")
        if op in RESERVED_OPTIONS:
            raise RegistrationError(f"Cannot register command '{new}': '{op}' is reserved.")
    return checked


class CommandRegistry:
    """A set of commands (and command groups) forming one command-line program.

    Args:
        prog: The program name in usage and messages (default: ``sys.argv[0]``'s name).
        description: Text shown at the top of ``--help``.
        version: When given, ``--version`` prints ``"<prog> <version>"``.
    """

    def __init__(
        self, prog: str | None = None, description: str | None = None, version: str | None = None
    ) -> None:
        self.prog = prog
        self.description = description
        self.version = version
        self.name = ""
        self.help_text = ""
        self.ops: tuple[str, ...] = ()
        self.parent: CommandRegistry | None = None
        self._commands: dict[str, CommandEntry] = {}
        self._groups: dict[str, CommandRegistry] = {}
        self._lookup: dict[str, str] = {}  # bare name or alias -> canonical name
        self._error_handlers: dict[type[BaseException], Callable[[Any], int | None]] = {}
        self._callback: CommandEntry | None = None
        self._single: str | None = None

    @classmethod
    def single(
        cls,
        handler: Callable[..., Any],
        *,
        prog: str | None = None,
        version: str | None = None,
        description: str = "",
        confirm: str | None = None,
        mutually_exclusive: Iterable[Iterable[str]] = (),
    ) -> CommandRegistry:
        """A program that is one command: its arguments follow the program name directly.

        ``CommandRegistry.single(main).run()`` makes ``app FILE --force`` run ``main``
        with no command word. ``--help`` shows the command's own help.

        Args:
            handler: The function to run.
            prog: The program name (default: ``sys.argv[0]``'s name).
            version: When given, ``--version`` prints ``"<prog> <version>"``.
            description: Help text (default: the docstring's first paragraph).
            confirm: As for :meth:`register`.
            mutually_exclusive: As for :meth:`register`.

        Raises:
            RegistrationError: The handler cannot become a command.
        """
        registry = cls(prog=prog, version=version)
        entry = registry.add_command(handler, description=description, confirm=confirm,
                                     mutually_exclusive=mutually_exclusive)
        registry._single = entry.name
        return registry

    @property
    def single_command(self) -> str | None:
        """The command's name when this program is one command (:meth:`single`), else ``None``."""
        return self._single

    @property
    def root_callback(self) -> CommandEntry | None:
        """The function registered with :meth:`callback`, as an entry, or ``None``."""
        return self._callback

    # -- registration -------------------------------------------------------------------

    def register(
        self,
        name: str | Callable[..., Any] | None = None,
        *,
        description: str = "",
        help_text: str = "",
        ops: Iterable[str] = (),
        confirm: str | None = None,
        hidden: bool = False,
        deprecated: bool | str = False,
        mutually_exclusive: Iterable[Iterable[str]] = (),
    ) -> Callable[[F], F]:
        """Decorator registering a function as a command; the function is returned unchanged.

        Args:
            name: The command name (default: the function name with ``_`` -> ``-``).
            description: Longer text for the command's ``--help`` (defaults to ``help_text``,
                then to the docstring's first paragraph).
            help_text: One-line summary for command listings (defaults to ``description``).
            ops: Aliases; ``"-g"``, ``"--greet"`` and bare ``"g"`` spellings all resolve.
            confirm: A question asked before the command runs (``"Drop every table?"``);
                the command gains ``--yes`` to skip it. Without a terminal and without
                ``--yes`` the command does not run (exit status 1).
            hidden: Keep the command out of help, suggestions and completion; it still runs.
            deprecated: Mark the command deprecated (``True``, or what to use instead,
                ``"use 'sync' instead"``): help says so and running it warns on stderr.
            mutually_exclusive: Groups of option names of which at most one may be given,
                e.g. ``[("json", "csv")]``.

        Raises:
            DuplicateCommandError: The name or an alias is already taken.
            RegistrationError: The handler's signature cannot be mapped to a command line,
                or an option's spelling collides with another's.
        """
        if callable(name):  # used bare: @cli.register
            func = name
            self.register()(func)
            return func

        def decorator(func: F) -> F:
            self.add_command(func, name, description=description, help_text=help_text, ops=ops,
                             confirm=confirm, hidden=hidden, deprecated=deprecated,
                             mutually_exclusive=mutually_exclusive)
            return func

        return decorator

    @overload
    def callback(self, func: F) -> F: ...
    @overload
    def callback(self, func: None = None) -> Callable[[F], F]: ...

    def callback(self, func: F | None = None) -> F | Callable[[F], F]:
        """Decorator registering the program's root options: ``app --verbose deploy ...``.

        The function's parameters become options given before the command word (each
        needs a default, or ``Option``/``Env``/``Prompt`` metadata; services are injected).
        It runs before every command; what it returns is registered in the container
        under its return annotation (or its type), so commands receive it by asking for
        that type. Only one callback per program, on the root registry.

        Raises:
            RegistrationError: A parameter would be positional or collides with a
                top-level alias, a second callback, or a callback on a group.

        Example:
            >>> cli = CommandRegistry(prog="app")
            >>> class Settings:
            ...     def __init__(self, verbose: int) -> None:
            ...         self.verbose = verbose
            >>> @cli.callback()
            ... def settings(verbose: bool = False) -> Settings:
            ...     return Settings(int(verbose))
        """
        if func is not None:  # used bare: @cli.callback
            self.set_callback(func)
            return func

        def decorator(func: F) -> F:
            self.set_callback(func)
            return func

        return decorator

    def set_callback(self, handler: Callable[..., Any]) -> CommandEntry:
        """Register the root callback without decorator syntax; see :meth:`callback`."""
        from .signature import ARGUMENT

        where = f"Cannot register callback {getattr(handler, '__name__', handler)!r}"
        if self.parent is not None:
            raise RegistrationError(f"{where}: callbacks belong to the root registry.")
        if self._callback is not None:
            raise RegistrationError(f"{where}: the program already has callback "
                                    f"{self._callback.name!r}.")
        if self._single is not None:
            raise RegistrationError(f"{where}: a single-command program has no root options; "
                                    "give the command the parameters instead.")
        if not callable(handler):
            raise RegistrationError(f"{where}: a callback must be callable.")
        entry = CommandEntry(getattr(handler, "__name__", "callback"), handler, "", "", ())
        entry.params = plan_params(entry.name, handler)
        entry.is_async = is_async_callable(handler)
        entry.is_async_gen = False
        entry.path = self.prog or "callback"
        for param in entry.params:
            if param.role == ARGUMENT:
                raise RegistrationError(
                    f"{where}: parameter '{param.name}' would be positional; root options "
                    "need a default (or Option(...))."
                )
        reserved = {op: f"the program's {op}" for op in RESERVED_OPTIONS}
        reserved.update({op: f"command alias '{op}'" for entry_ in self._commands.values()
                         for op in entry_.ops if op.startswith("-")})
        reserved.update({op: f"group alias '{op}'" for group in self._groups.values()
                         for op in group.ops if op.startswith("-")})
        check_spellings(where, entry.params, reserved)
        from .invocation import callback_provides

        entry.provides = callback_provides(entry)
        self._callback = entry
        return entry

    def add_command(
        self,
        handler: Callable[..., Any],
        name: str | None = None,
        *,
        description: str = "",
        help_text: str = "",
        ops: Iterable[str] = (),
        confirm: str | None = None,
        hidden: bool = False,
        deprecated: bool | str = False,
        mutually_exclusive: Iterable[Iterable[str]] = (),
    ) -> CommandEntry:
        """Register ``handler`` without decorator syntax; returns the new entry.

        Takes the same arguments as :meth:`register`.
        """
        if self._single is not None:
            raise RegistrationError(
                f"Cannot register {handler!r}: this program is the single command "
                f"'{self._single}'."
            )
        if not callable(handler):
            raise RegistrationError(f"Cannot register {handler!r}: a command must be callable.")
        command = name or getattr(handler, "__name__", "").replace("_", "-")
        if not command or command.startswith("-") or any(c.isspace() for c in command):
            raise RegistrationError(
                f"Cannot register {handler!r}: invalid command name {command!r}."
            )
        checked = _check_ops(command, ops)
        self._check_free(command, checked)
        self._check_root_options(command, checked)
        summary, long_text = _texts(handler, description, help_text)
        entry = CommandEntry(command, handler, summary, long_text, checked)
        entry.params = plan_params(command, handler)
        entry.is_async = is_async_callable(handler)
        entry.is_async_gen = is_async_generator_callable(handler)
        where = f"Cannot register command '{command}'"
        if confirm is not None:
            if not isinstance(confirm, str) or not confirm.strip():
                raise RegistrationError(f"{where}: confirm= needs the question to ask.")
            check_spellings(where, entry.params, {"--yes": "confirm= (it adds --yes)"})
        entry.confirm, entry.hidden, entry.deprecated = confirm, bool(hidden), deprecated
        entry.exclusive = check_exclusive(where, entry.params, mutually_exclusive)
        self._insert(entry)
        return entry

    def _check_root_options(self, new: str, ops: tuple[str, ...]) -> None:
        """A top-level alias may not look like one of the root callback's options."""
        if self.parent is not None or self._callback is None:
            return
        taken = {s for p in self._callback.params for s in spellings_of(p)}
        for op in ops:
            if op in taken:
                raise RegistrationError(
                    f"Cannot register command '{new}': alias '{op}' is a root option of "
                    f"callback '{self._callback.name}'."
                )

    def _check_free(self, new: str, ops: tuple[str, ...], ignore: str | None = None) -> None:
        for spelling in (new, *ops):
            owner = self._lookup.get(_bare(spelling))
            if owner is not None and owner != ignore:
                raise DuplicateCommandError(spelling, owner, new)

    def _insert(self, entry: CommandEntry) -> None:
        entry.path = f"{self.path} {entry.name}".strip()
        self._commands[entry.name] = entry
        for spelling in (entry.name, *entry.ops):
            self._lookup[_bare(spelling)] = entry.name

    def group(
        self,
        name: str,
        *,
        description: str = "",
        help_text: str = "",
        ops: Iterable[str] = (),
    ) -> CommandRegistry:
        """A nested registry whose commands run as ``app <name> <command>``.

        Calling ``group`` again with the same name returns the existing group.

        Raises:
            DuplicateCommandError: The name or an alias is taken by a command.
        """
        existing = self._groups.get(_bare(name))
        if existing is not None:
            return existing
        checked = _check_ops(name, ops)
        self._check_free(name, checked)
        self._check_root_options(name, checked)
        child = CommandRegistry(description=description or help_text or None)
        child.name, child.ops, child.parent = name, checked, self
        child.help_text = help_text or description
        self._groups[name] = child
        for spelling in (name, *checked):
            self._lookup[_bare(spelling)] = name
        return child

    def crud(
        self,
        model: Any,
        *,
        group: str | None = None,
        prefix: str | None = None,
        commands: Iterable[str] = ("create", "list", "get", "update", "delete"),
    ) -> CommandRegistry:
        """Register ``create``, ``list``, ``get``, ``update`` and ``delete`` for a model.

        The model must be registered with ``@database_registry`` (a ``DatabaseRegistry``
        works too). Arguments come from its fields; records print as JSON without password
        fields. Imports pydantic and ``registers.db`` only when called. See ``docs/cli.md``,
        "CLI over models", for the arguments of each command and the exit statuses.

        Args:
            model: The registered model class (or its manager).
            group: The group the commands go in (default: the table name, ``_`` -> ``-``):
                ``app users create --name Ada``.
            prefix: Register flat commands named ``<prefix>-create`` ... on this registry
                instead of a group (``""``: plain ``create`` ...). Not with ``group``.
            commands: Which of the five commands to register.

        Returns:
            The registry holding the commands (the group, or this registry with ``prefix``).

        Raises:
            RegistrationError: ``model`` is not registered, an unknown command is asked
                for, or both ``group`` and ``prefix`` are given.
            DuplicateCommandError: A command name is already taken.

        Example:
            >>> cli.crud(User)  # doctest: +SKIP
            >>> cli.invoke(["users", "create", "--name", "Ada"]).exit_code  # doctest: +SKIP
            0
        """
        from .crud import register_crud

        return register_crud(self, model, group=group, prefix=prefix, commands=commands)

    def merge(self, other: CommandRegistry, allow_override: bool = False) -> None:
        """Add every command, alias and group of ``other`` to this registry.

        Args:
            other: The registry to copy from (left unchanged).
            allow_override: Replace colliding commands instead of raising.

        Raises:
            DuplicateCommandError: A name or alias collides and ``allow_override`` is false.
        """
        if other._callback is not None and other._callback is not self._callback:
            if self._callback is not None and not allow_override:
                raise RegistrationError(
                    f"Cannot merge: both programs have a root callback "
                    f"('{self._callback.name}' and '{other._callback.name}')."
                )
            self._callback = None
            self.set_callback(other._callback.handler)
        for exc_type, handler in other._error_handlers.items():
            if allow_override or exc_type not in self._error_handlers:
                self._error_handlers[exc_type] = handler
        for entry in other._commands.values():
            if allow_override:
                self._remove_colliding(entry.name, entry.ops)
            self._check_free(entry.name, entry.ops)
            self._insert(_copy_entry(entry))
        for group in other._groups.values():
            mine = self._groups.get(group.name)
            if mine is None:
                if allow_override:
                    self._remove_colliding(group.name, group.ops)
                mine = self.group(group.name, description=group.description or "",
                                  help_text=group.help_text, ops=group.ops)
            mine.merge(group, allow_override=allow_override)

    def _remove_colliding(self, name: str, ops: tuple[str, ...]) -> None:
        for spelling in (name, *ops):
            owner = self._lookup.get(_bare(spelling))
            if owner is None:
                continue
            self._commands.pop(owner, None)
            self._groups.pop(owner, None)
            for key in [k for k, v in self._lookup.items() if v == owner]:
                del self._lookup[key]

    # -- lookup -------------------------------------------------------------------------

    @property
    def path(self) -> str:
        """The group path from the root registry (``""`` for the root)."""
        if self.parent is None:
            return ""
        return f"{self.parent.path} {self.name}".strip()

    @property
    def root(self) -> CommandRegistry:
        """The outermost registry this group belongs to."""
        return self if self.parent is None else self.parent.root

    def resolve_name(self, token: str) -> str | None:
        """The canonical name at this level for a name or alias in any spelling."""
        bare = _bare(token)
        return self._lookup.get(bare) or self._lookup.get(bare.replace("_", "-"))

    def suggest(self, token: str) -> str | None:
        """The canonical name closest to a mistyped ``token``, if one is close enough."""
        import difflib

        visible = [k for k, v in self._lookup.items()
                   if v not in self._commands or not self._commands[v].hidden]
        matches = difflib.get_close_matches(_bare(token), visible, n=1, cutoff=0.6)
        return self._lookup[matches[0]] if matches else None

    def find(self, path: str) -> CommandEntry | CommandRegistry:
        """The command or group at ``path`` (``"greet"``, ``"-g"``, ``"deploy service"``).

        Raises:
            UnknownCommandError: Nothing matches; the error suggests a close name.
        """
        tokens = path.split()
        if not tokens:
            raise UnknownCommandError(path)
        node: CommandRegistry = self
        for index, token in enumerate(tokens):
            canonical = node.resolve_name(token)
            if canonical is None:
                raise UnknownCommandError(" ".join(tokens[: index + 1]), node.suggest(token))
            if index == len(tokens) - 1:
                return node._commands.get(canonical) or node._groups[canonical]
            if canonical not in node._groups:
                raise UnknownCommandError(" ".join(tokens))
            node = node._groups[canonical]
        raise AssertionError("unreachable")

    def get(self, name_or_alias: str) -> CommandEntry:
        """The entry for a command name or alias (any spelling; ``"group command"`` paths).

        Raises:
            UnknownCommandError: No command has that name or alias.
        """
        found = self.find(name_or_alias)
        if isinstance(found, CommandRegistry):
            raise UnknownCommandError(name_or_alias)
        return found

    def has(self, name_or_alias: str) -> bool:
        """Whether ``get(name_or_alias)`` would succeed."""
        try:
            self.get(name_or_alias)
        except UnknownCommandError:
            return False
        return True

    def all(self) -> dict[str, CommandEntry]:
        """Every command by full path (``"deploy service"`` for grouped ones), in order."""
        found: dict[str, CommandEntry] = {e.path: e for e in self._commands.values()}
        for group in self._groups.values():
            found.update(group.all())
        return found

    @property
    def commands(self) -> dict[str, CommandEntry]:
        """The commands at this level (not inside groups), by name."""
        return dict(self._commands)

    @property
    def groups(self) -> dict[str, CommandRegistry]:
        """The groups at this level, by name."""
        return dict(self._groups)

    def __len__(self) -> int:
        return len(self._commands) + sum(len(g) for g in self._groups.values())

    def __contains__(self, name_or_alias: object) -> bool:
        return isinstance(name_or_alias, str) and self.has(name_or_alias)

    def __repr__(self) -> str:
        label = f"group {self.path!r}" if self.parent else f"prog={self.prog!r}"
        return f"<CommandRegistry {label}: {len(self)} commands>"

    def list_commands(self) -> None:
        """Print every command with its aliases and summary to stdout."""
        from .parser import format_command_table

        text = format_command_table(self)
        print(text if text else "No commands are registered.")

    # -- running ------------------------------------------------------------------------

    def run(
        self,
        argv: Iterable[str] | None = None,
        *,
        container: DIContainer | None = None,
        middleware: MiddlewareChain | None = None,
        print_result: bool = True,
    ) -> Any:
        """Parse ``argv`` (default ``sys.argv[1:]``), run the command and return its result.

        Exit statuses (raised as :class:`SystemExit`): 2 for usage errors (unknown command,
        missing or invalid argument, no command), 1 for a :class:`FrameworkError`, for an
        exception an error handler took (or the status it returned), for a closed pipe on
        stdout (quietly, like Click) and for any other failure to write the output (one
        line); 130 for Ctrl-C. Other exceptions raised by the handler propagate.

        Args:
            argv: The arguments after the program name.
            container: Services injected into handler parameters by type.
            middleware: Pre/post hooks run around the command.
            print_result: Print the return value (``str`` as is, models, dicts and lists as
                indented JSON, ``None`` not at all; a generator's items one by one as they
                come).

        Returns:
            The handler's return value (awaited for ``async def`` handlers; a list of the
            items for generator handlers).
        """
        tokens = sys.argv[1:] if argv is None else [str(a) for a in argv]
        try:
            return self._run(tokens, container, middleware, print_result)
        except KeyboardInterrupt:
            print("Interrupted.", file=sys.stderr)
            raise SystemExit(130) from None
        except FrameworkError as exc:
            _quiet(exc.show)
            raise SystemExit(exc.exit_code) from None
        except OSError as exc:  # writing help or a usage error
            failed = getattr(exc, "registers_output", False)
            status = _output_failed(exc, self._prog_name(), stdout_failed=failed)
            if status is None:
                raise
            raise SystemExit(status) from None

    def _prog_name(self) -> str:
        import os

        return self.root.prog or os.path.basename(sys.argv[0]) or "app"

    def _run(
        self,
        tokens: list[str],
        container: DIContainer | None,
        middleware: MiddlewareChain | None,
        print_result: bool,
    ) -> Any:
        from .parser import build_parser, parse_command

        if not len(self) and not (tokens and tokens[0] in RESERVED_OPTIONS):
            prog = build_parser(self, container, only=()).prog
            print(f"{prog}: no commands are registered.", file=sys.stderr)
            raise SystemExit(2)
        path, kwargs = parse_command(self, tokens, container)
        output = _Output(sys.stdout)
        sys.stdout = output
        try:
            result = self._call(path, kwargs, container, middleware, print_result)
            output.flush()  # a closed pipe or a full disk shows up here at the latest
        except CommandError as exc:
            if exc.where is None:
                exc.where = f"{self._prog_name()} {path}".strip()
            raise
        except FrameworkError:
            raise
        except Exception as exc:
            if isinstance(exc, OSError):
                where = f"{self._prog_name()} {path}".strip()
                status = _output_failed(exc, where, output.failed is not None)
                if status is not None:
                    raise SystemExit(status) from None
            handler = self._error_handler_for(exc, path)
            if handler is None:
                raise
            status = handler(exc)
            raise SystemExit(1 if status is None else status) from None
        finally:
            if sys.stdout is output:
                sys.stdout = output.stream
        return result

    def _call(
        self,
        path: str,
        kwargs: dict[str, Any],
        container: DIContainer | None,
        middleware: MiddlewareChain | None,
        print_result: bool,
    ) -> Any:
        from .dispatcher import Dispatcher

        entry = self.get(path)
        if self._callback is None and not _needs_preparation(entry):
            result = Dispatcher(self, container, middleware).dispatch(path, kwargs)
            return self._finish(result, print_result)
        # warnings, prompts and confirmation first; then the callback, files, the command
        from contextlib import ExitStack

        from .invocation import open_files, prepare, run_callback
        from .parser import split_root_values

        root_values = split_root_values(kwargs)
        prepare(self, entry, kwargs, root_values)
        with ExitStack() as stack:  # files stay open until a generator's items are out
            if self._callback is not None:
                container = run_callback(self, root_values, container, stack)
            open_files(entry, kwargs, stack)
            result = Dispatcher(self, container, middleware).dispatch(entry.path, kwargs)
            return self._finish(result, print_result)

    def _finish(self, result: Any, print_result: bool) -> Any:
        """Await, drain (generators) and print a handler's result."""
        from .dispatcher import is_awaitable, run_awaitable

        if is_awaitable(result):
            result = run_awaitable(result)
        if hasattr(result, "__anext__"):  # an async generator handler
            return run_awaitable(_drain_async(result, print_result))
        import types

        if isinstance(result, types.GeneratorType):
            return _drain(result, print_result)
        if print_result:
            from .output import render

            text = render(result)
            if text is not None:
                print(text)
        return result

    # -- error handlers -----------------------------------------------------------------

    def error_handler(
        self, *exc_types: type[BaseException]
    ) -> Callable[[Callable[[Any], int | None]], Callable[[Any], int | None]]:
        """Decorator: ``handler(exc)`` handles these exceptions raised by a command.

        The handler prints what the user should see and returns the exit status (``None``
        means 1). Handlers of the registry closest to the command (its group, then the
        parents) are tried first; within one registry the most specific class wins. Only
        when none matches do the built-in handlers run: ``registers.db``'s
        ``RegistryError`` and pydantic's ``ValidationError`` print one line
        (``app cmd: error: ...``) and exit 1. Anything else propagates.

        Example:
            >>> cli = CommandRegistry(prog="app")
            >>> @cli.error_handler(KeyError)
            ... def missing(exc: KeyError) -> int:
            ...     print(f"app: no such key: {exc}", file=sys.stderr)
            ...     return 3

        Raises:
            RegistrationError: No exception class was given, or one is not a class of
                ``BaseException``.
        """
        if not exc_types or not all(
            isinstance(t, type) and issubclass(t, BaseException) for t in exc_types
        ):
            raise RegistrationError(
                f"error_handler() needs exception classes, got {exc_types!r}."
            )

        def decorator(
            handler: Callable[[Any], int | None],
        ) -> Callable[[Any], int | None]:
            if not callable(handler):
                raise RegistrationError(f"error handler {handler!r} is not callable.")
            for exc_type in exc_types:
                self._error_handlers[exc_type] = handler
            return handler

        return decorator

    def _error_handler_for(
        self, exc: BaseException, path: str
    ) -> Callable[[Any], int | None] | None:
        chain: list[CommandRegistry] = [self]
        node: CommandRegistry = self
        for part in path.split()[:-1]:
            node = node._groups[part]
            chain.append(node)
        for registry in reversed(chain):
            for cls in type(exc).__mro__:
                found = registry._error_handlers.get(cls)
                if found is not None:
                    return found
        builtin = _builtin_message(exc)
        if builtin is None:
            return None
        where = f"{self._prog_name()} {path}".strip()

        def show(_: Any) -> int:
            error = CommandError(builtin)
            error.where = where
            _quiet(error.show)
            return 1

        return show

    def invoke(
        self,
        argv: Iterable[str] | str = (),
        *,
        container: DIContainer | None = None,
        middleware: MiddlewareChain | None = None,
        input: str | None = None,
    ) -> InvokeResult:
        """Run the program in-process, capturing output; never raises ``SystemExit``.

        The test helper (Click's ``CliRunner.invoke`` is the model)::

            result = cli.invoke(["greet", "Alice"])
            assert result.exit_code == 0 and result.stdout == "Hello, Alice!\\n"

        Args:
            argv: Arguments after the program name (a string is split like a shell would).
            container: Services to inject.
            middleware: Hooks to run.
            input: Text served as stdin.

        Returns:
            An :class:`~registers.cli.testing.InvokeResult` with ``exit_code``, ``stdout``,
            ``stderr``, ``return_value`` and ``exception``.
        """
        from .testing import invoke

        return invoke(self, argv, container=container, middleware=middleware, input=input)


def _quiet(show: Callable[[], None]) -> None:
    """Run ``show`` (which writes to stderr); a closed stderr is no reason for a traceback."""
    try:
        show()
    except OSError:
        _silence(sys.stderr)


def _silence(stream: Any) -> None:
    """Point ``stream``'s file descriptor at /dev/null, so the flush at exit is quiet."""
    import os

    try:
        fd = stream.fileno()
    except (AttributeError, OSError, ValueError):
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, fd)
    finally:
        os.close(devnull)


class _Output:
    """``sys.stdout`` while a command runs: remembers whether writing to it failed.

    Everything else is delegated, so the command sees its usual stream.
    """

    __slots__ = ("failed", "stream")

    def __init__(self, stream: Any) -> None:
        self.stream = stream
        self.failed: OSError | None = None

    def write(self, text: str) -> int:
        try:
            return int(self.stream.write(text))
        except OSError as exc:
            self.failed = exc
            raise

    def flush(self) -> None:
        try:
            self.stream.flush()
        except OSError as exc:
            self.failed = exc
            raise

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stream, name)


def _output_failed(exc: OSError, prog: str, stdout_failed: bool) -> int | None:
    """The exit status for a failure to write the output, or ``None`` if ``exc`` is not one.

    A closed pipe (``app list | head``) exits 1 without a word, like Click. Another write
    error on stdout (a full disk: ``app list > /dev/full``) prints one line and exits 1.
    """
    import errno

    if exc.errno == errno.EPIPE:
        _silence(sys.stdout)
        _silence(sys.stderr)
        return 1
    if not stdout_failed:
        return None
    _silence(sys.stdout)
    reason = exc.strerror or str(exc)
    _quiet(lambda: print(f"{prog}: error: cannot write output: {reason}", file=sys.stderr))
    return 1


def _builtin_message(exc: BaseException) -> str | None:
    """The one-line message for a ``RegistryError`` or pydantic ``ValidationError``.

    Recognised by class name, so neither pydantic nor ``registers.db`` is imported here.
    """
    names = {f"{c.__module__}.{c.__qualname__}" for c in type(exc).__mro__}
    if "registers.db.exceptions.RegistryError" in names:
        return str(getattr(exc, "message", None) or exc)
    if "pydantic_core._pydantic_core.ValidationError" in names:
        errors = exc.errors(include_url=False, include_input=False)  # type: ignore[attr-defined]
        title = getattr(exc, "title", "")
        parts = []
        for error in errors:
            loc = ".".join(str(p) for p in error.get("loc", ()))
            parts.append(f"{loc}: {error['msg']}" if loc else str(error["msg"]))
        count = len(errors)
        head = f"{count} validation error{'s' if count != 1 else ''} for {title}"
        return f"{head}: {'; '.join(parts)}" if parts else head
    return None


def _drain(items: Any, print_result: bool) -> list[Any]:
    from .output import render

    seen = []
    for item in items:
        seen.append(item)
        if print_result:
            text = render(item)
            if text is not None:
                print(text)
    return seen


async def _drain_async(items: Any, print_result: bool) -> list[Any]:
    from .output import render

    seen = []
    async for item in items:
        seen.append(item)
        if print_result:
            text = render(item)
            if text is not None:
                print(text)
    return seen
