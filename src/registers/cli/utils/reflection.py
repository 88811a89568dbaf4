"""Signature -> parameters: names, kinds, evaluated annotations, defaults and help.

Plain functions (also behind ``functools.wraps`` decorators) are read straight from their
code object, so registering commands never imports :mod:`inspect` or :mod:`typing`; any other
callable (classes, ``functools.partial``, callable objects) falls back to :mod:`inspect`.
"""

from __future__ import annotations

import types

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

__all__ = [
    "EMPTY",
    "ParamInfo",
    "get_params",
    "is_async_callable",
    "is_async_generator_callable",
    "parse_docstring",
    "unwrap",
]

_CO_VARARGS = 0x04
_CO_VARKEYWORDS = 0x08
_CO_COROUTINE = 0x80
_CO_ASYNC_GENERATOR = 0x200

POSITIONAL_ONLY = "positional-only"
POSITIONAL_OR_KEYWORD = "positional-or-keyword"
VAR_POSITIONAL = "var-positional"
KEYWORD_ONLY = "keyword-only"
VAR_KEYWORD = "var-keyword"

_SECTION_HEADERS = ("args:", "arguments:", "parameters:", "params:")


class _Empty:
    """Marker for "no default" / "no annotation"."""

    _instance: _Empty | None = None

    def __new__(cls) -> _Empty:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "EMPTY"

    def __bool__(self) -> bool:
        return False


EMPTY: Any = _Empty()


class ParamInfo:
    """One parameter of a handler.

    Attributes:
        name: The parameter name.
        kind: One of ``"positional-only"``, ``"positional-or-keyword"``,
            ``"var-positional"``, ``"keyword-only"``, ``"var-keyword"``.
        annotation: The evaluated annotation, or ``EMPTY``.
        default: The default value, or ``EMPTY``.
        help: Help from the docstring's ``Args:`` section ("" when absent).
    """

    __slots__ = ("annotation", "default", "help", "kind", "name")

    def __init__(
        self, name: str, kind: str, annotation: Any = EMPTY, default: Any = EMPTY, help: str = ""
    ) -> None:
        self.name = name
        self.kind = kind
        self.annotation = annotation
        self.default = default
        self.help = help

    def __repr__(self) -> str:
        return f"ParamInfo({self.name!r}, {self.kind!r}, {self.annotation!r}, {self.default!r})"


def unwrap(func: Callable[..., Any]) -> Callable[..., Any]:
    """Follow ``__wrapped__`` (set by :func:`functools.wraps`) to the original function."""
    seen = {id(func)}
    while hasattr(func, "__wrapped__"):
        func = func.__wrapped__
        if id(func) in seen:
            break
        seen.add(id(func))
    return func


def _code_flags(func: Callable[..., Any]) -> int:
    candidates = (func, unwrap(func), getattr(func, "func", None), type(func).__call__)
    for candidate in candidates:
        target = getattr(candidate, "__func__", candidate)
        code = getattr(target, "__code__", None)
        if code is not None:
            return int(code.co_flags)
    return 0


def is_async_callable(func: Callable[..., Any]) -> bool:
    """Whether calling ``func`` returns a coroutine (an ``async def``, maybe decorated)."""
    return bool(_code_flags(func) & _CO_COROUTINE)


def is_async_generator_callable(func: Callable[..., Any]) -> bool:
    """Whether calling ``func`` returns an async generator (``async def`` with ``yield``)."""
    return bool(_code_flags(func) & _CO_ASYNC_GENERATOR)


def _evaluate(func: Any, annotation: Any) -> Any:
    namespace = dict(getattr(func, "__globals__", {}))
    for _ in range(3):  # "'int'" under PEP 563 is a string of a string
        if not isinstance(annotation, str):
            return annotation
        try:
            annotation = eval(annotation, namespace)  # the user's own annotation
        except Exception as exc:
            raise NameError(
                f"cannot evaluate annotation {annotation!r} of {func.__qualname__}: {exc}"
            ) from exc
    return annotation


def _params_from_code(func: types.FunctionType, skip_first: bool) -> list[ParamInfo]:
    code = func.__code__
    names = code.co_varnames
    npos, nkw = code.co_argcount, code.co_kwonlyargcount
    defaults = func.__defaults__ or ()
    kwdefaults = func.__kwdefaults__ or {}
    annotations = func.__annotations__
    first_default = npos - len(defaults)
    params: list[ParamInfo] = []
    for index, name in enumerate(names[:npos]):
        kind = POSITIONAL_ONLY if index < code.co_posonlyargcount else POSITIONAL_OR_KEYWORD
        default = defaults[index - first_default] if index >= first_default else EMPTY
        params.append(ParamInfo(name, kind, annotations.get(name, EMPTY), default))
    cursor = npos + nkw
    if code.co_flags & _CO_VARARGS:
        params.append(ParamInfo(names[cursor], VAR_POSITIONAL))
        cursor += 1
    for name in names[npos : npos + nkw]:
        params.append(
            ParamInfo(name, KEYWORD_ONLY, annotations.get(name, EMPTY), kwdefaults.get(name, EMPTY))
        )
    if code.co_flags & _CO_VARKEYWORDS:
        params.append(ParamInfo(names[cursor], VAR_KEYWORD))
    for param in params:
        param.annotation = _evaluate(func, param.annotation)
    return params[1:] if skip_first else params


def _params_from_inspect(func: Callable[..., Any]) -> list[ParamInfo]:
    import inspect

    kinds = {
        inspect.Parameter.POSITIONAL_ONLY: POSITIONAL_ONLY,
        inspect.Parameter.POSITIONAL_OR_KEYWORD: POSITIONAL_OR_KEYWORD,
        inspect.Parameter.VAR_POSITIONAL: VAR_POSITIONAL,
        inspect.Parameter.KEYWORD_ONLY: KEYWORD_ONLY,
        inspect.Parameter.VAR_KEYWORD: VAR_KEYWORD,
    }
    signature = inspect.signature(func, eval_str=True)
    return [
        ParamInfo(
            p.name,
            kinds[p.kind],
            EMPTY if p.annotation is p.empty else p.annotation,
            EMPTY if p.default is p.empty else p.default,
        )
        for p in signature.parameters.values()
    ]


def get_params(func: Callable[..., Any]) -> list[ParamInfo]:
    """The parameters of ``func`` with evaluated annotations and docstring help.

    Decorators that use :func:`functools.wraps` are looked through, so the wrapped
    function's signature is reported.

    Args:
        func: Any callable.

    Returns:
        One :class:`ParamInfo` per parameter, in signature order.

    Raises:
        NameError: A string annotation cannot be evaluated.
        TypeError: ``func`` has no inspectable signature.
    """
    target = unwrap(func)
    if isinstance(target, types.FunctionType):
        params = _params_from_code(target, skip_first=False)
    elif isinstance(target, types.MethodType) and isinstance(target.__func__, types.FunctionType):
        params = _params_from_code(target.__func__, skip_first=True)
    else:
        params = _params_from_inspect(func)
    docs = parse_docstring(getattr(target, "__doc__", None))[1]
    for param in params:
        param.help = docs.get(param.name, "")
    return params


def parse_docstring(doc: str | None) -> tuple[str, dict[str, str]]:
    """Split a Google-style docstring into its summary and per-parameter help.

    Args:
        doc: The docstring (``None`` is allowed).

    Returns:
        ``(summary, {parameter: help})``: the first paragraph, and the entries of the
        ``Args:`` section with continuation lines joined.

    Example:
        >>> parse_docstring('''Greet.

        ...     Args:
        ...         name (str): Who to greet.
        ... ''')
        ('Greet.', {'name': 'Who to greet.'})
    """
    if not doc:
        return "", {}
    lines = doc.expandtabs().splitlines()
    summary: list[str] = []
    for line in lines:
        if not line.strip():
            if summary:
                break
            continue
        if line.strip().lower() in _SECTION_HEADERS:
            break
        summary.append(line.strip())
    return " ".join(summary), _args_section(lines)


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _args_section(lines: list[str]) -> dict[str, str]:
    found: dict[str, str] = {}
    start = next((i for i, ln in enumerate(lines) if ln.strip().lower() in _SECTION_HEADERS), None)
    if start is None:
        return found
    header_indent = _indent(lines[start])
    entry_indent: int | None = None
    current: str | None = None
    for line in lines[start + 1 :]:
        if not line.strip():
            continue
        indent = _indent(line)
        if indent <= header_indent:
            break
        if entry_indent is None:
            entry_indent = indent
        if indent == entry_indent and ":" in line:
            head, _, text = line.strip().partition(":")
            current = head.split("(")[0].strip().lstrip("*")
            found[current] = text.strip()
        elif current is not None:
            found[current] = f"{found[current]} {line.strip()}".strip()
    return found
