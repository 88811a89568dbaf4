"""Between parsing and calling: warnings, prompts, confirmation, root callback, files.

``CommandRegistry.run`` imports this module only for a command that needs it (a prompt, a
file, ``confirm=``, ``deprecated=``, or a program with a root callback), so a plain
command's start-up never pays for it. The order is fixed: the deprecation warning, prompts
for missing values (callback first, then command), the confirmation question, and only
then any side effect: the root callback runs and files are opened.
"""

from __future__ import annotations

import os
import sys

from .exceptions import CommandError, FrameworkError, RegistrationError
from .params import open_file
from .parser import YES_DEST, hide_value
from .signature import PROMPT
from .terminal import REQUIRED, Aborted, ask, confirm, interactive, write_error_line
from .utils.reflection import EMPTY

TYPE_CHECKING = False
if TYPE_CHECKING:
    from contextlib import ExitStack
    from typing import Any

    from .container import DIContainer
    from .registry import CommandEntry, CommandRegistry
    from .signature import CommandParam

__all__ = ["callback_provides", "open_files", "prepare", "run_callback"]


def where(registry: CommandRegistry, entry: CommandEntry) -> str:
    """``"app deploy"``: how messages about ``entry`` start."""
    prog = registry.root.prog or os.path.basename(sys.argv[0]) or "app"
    if registry.root.single_command is not None or entry.path == prog:
        return prog
    return f"{prog} {entry.path}"


def _show_default(param: CommandParam) -> str | None:
    if param.secret or param.default is None or param.default is EMPTY:
        return None
    text = str(getattr(param.default, "value", param.default))
    return text or None


def _fill(param: CommandParam, values: dict[str, Any], prefix: str, key: str) -> None:
    prompt = param.prompt
    assert prompt is not None
    if not interactive():
        if param.has_default and not param.required:
            return  # the handler's default, as if the option were left out
        how = "" if param.role == PROMPT else f"; give {param.option}"
        error = CommandError(f"the following arguments are required: {param.display} "
                             f"(no terminal to prompt on{how})", exit_code=2)
        error.where = prefix
        raise error
    convert = param.info.convert if param.info.convert is not None else str
    if param.secret:  # a rejected secret is never echoed back
        convert = hide_value(convert)
    default = param.default if param.has_default and not param.required else REQUIRED
    choices = param.info.choices
    text = f"{prompt.text} ({', '.join(choices)})" if choices else prompt.text
    values[key] = ask(text, convert=convert, hide_input=prompt.hide_input,
                      confirm=prompt.confirm, default=default,
                      show_default=_show_default(param), where=prefix)


def prompt_missing(
    entry: CommandEntry, values: dict[str, Any], prefix: str, key_prefix: str = ""
) -> None:
    """Ask for every ``Prompt`` parameter of ``entry`` missing from ``values`` (in order).

    Raises:
        CommandError: A value is missing, there is no default and stdin is not a
            terminal (exit status 2).
        Aborted: Input ended at a prompt.
    """
    for param in entry.params:
        key = key_prefix + param.name
        if param.prompt is not None and key not in values:
            _fill(param, values, prefix, key)


def prepare(
    registry: CommandRegistry,
    entry: CommandEntry,
    values: dict[str, Any],
    root_values: dict[str, Any],
) -> None:
    """Warn, prompt and confirm for ``entry``; ``values`` gains the answers.

    Raises:
        CommandError: A prompted value is missing and stdin is not a terminal (exit 2).
        Aborted: Confirmation refused or impossible, or input ended (exit 1).
    """
    prefix = where(registry, entry)
    if entry.deprecated:
        notice = entry.deprecated
        suffix = f"; {notice}" if isinstance(notice, str) else ""
        write_error_line(sys.stderr, prefix, f"command '{entry.path}' is deprecated{suffix}",
                         "warning")
    callback = registry.root.root_callback
    if callback is not None:
        prompt_missing(callback, root_values, registry.root.prog or prefix)
    prompt_missing(entry, values, prefix)
    confirmed = values.pop(YES_DEST, False)
    if not entry.confirm or confirmed:
        return
    if not interactive():
        raise Aborted("not confirmed (stdin is not a terminal; pass --yes to confirm)", prefix)
    if not confirm(entry.confirm, where=prefix):
        raise Aborted("not confirmed", prefix)


def open_files(entry: CommandEntry, values: dict[str, Any], stack: ExitStack) -> None:
    """Replace each ``File`` parameter's path in ``values`` by the open stream.

    Defaults that are paths (``"-"``) are opened too; streams opened here are closed when
    ``stack`` closes.

    Raises:
        FrameworkError: A file cannot be opened (one line naming it; exit status 1).
    """
    for param in entry.params:
        if param.file is None:
            continue
        value = values.get(param.name, param.default)
        if value is EMPTY:
            continue
        try:
            stream, close = open_file(param.file, value)
        except OSError as exc:
            reason = exc.strerror or str(exc)
            raise FrameworkError(
                f"Cannot open {param.display} '{value}': {reason}."
            ) from None
        if close:
            stack.callback(stream.close)
        values[param.name] = stream


def callback_provides(callback: CommandEntry) -> Any:
    """The class the callback's result is registered as (its return annotation), or ``None``.

    Raises:
        RegistrationError: The annotation is a command-line type (``str``, ``int``...),
            which commands would receive in place of their own options.
    """
    from .utils.reflection import unwrap
    from .utils.typing import UnsupportedAnnotation, classify

    handler = unwrap(callback.handler)
    annotation = getattr(handler, "__annotations__", {}).get("return", EMPTY)
    if isinstance(annotation, str):
        from .utils.reflection import _evaluate

        try:
            annotation = _evaluate(handler, annotation)
        except NameError as exc:
            raise RegistrationError(f"Cannot register callback '{callback.name}': {exc}") \
                from exc
    if annotation is EMPTY or annotation is None or annotation is type(None):
        return None
    try:
        kind = classify(annotation).kind
    except UnsupportedAnnotation:
        kind = "unsupported"
    if kind != "service":
        raise RegistrationError(
            f"Cannot register callback '{callback.name}': it returns "
            f"{getattr(annotation, '__name__', annotation)}; return an object of your own "
            "class, which commands then ask for by type."
        )
    return annotation


def run_callback(
    registry: CommandRegistry,
    root_values: dict[str, Any],
    container: DIContainer | None,
    stack: ExitStack,
) -> DIContainer | None:
    """Run the root callback; return the container commands should use.

    The callback's result (if not ``None``) is registered in a copy of ``container``, so
    the caller's container is never changed.
    """
    from .dispatcher import Dispatcher, is_awaitable, run_awaitable

    callback = registry.root_callback
    assert callback is not None
    open_files(callback, root_values, stack)
    dispatcher = Dispatcher(registry, container)
    kwargs = dispatcher.bind(callback, root_values)
    result = dispatcher.call(callback, kwargs)
    if is_awaitable(result):
        result = run_awaitable(result)
    if result is None:
        return container
    provides = callback.provides if callback.provides is not None else type(result)
    from .utils.typing import classify

    if classify(provides).kind != "service":
        raise FrameworkError(
            f"Callback '{callback.name}' returned a {type(result).__name__}; return an object "
            "of your own class (or None)."
        )
    from .container import DIContainer

    scoped = container.copy() if container is not None else DIContainer()
    scoped.register(provides, result)
    return scoped
