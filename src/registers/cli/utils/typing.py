"""Annotation -> command-line conversion: the one table that says how a type is parsed.

Adding a command-line type is adding a row to ``_SCALARS`` (or ``_COLLECTIONS``). Nothing
here imports :mod:`typing`, :mod:`pathlib`, :mod:`decimal` and friends: an annotation can
only be one of those types if the user's program already imported the module, so types are
recognised by their module and qualified name, which keeps ``import registers.cli`` cheap.
"""

from __future__ import annotations

import enum
import sys
import types
from argparse import ArgumentTypeError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    Converter = Callable[[str], Any]

__all__ = [
    "TypeInfo",
    "UnsupportedAnnotation",
    "classify",
    "is_bool_flag",
    "is_optional",
    "resolve_argparse_type",
    "strip_optional",
    "type_name",
    "unwrap_annotated",
]

_NONE_TYPE = type(None)


class UnsupportedAnnotation(TypeError):
    """An annotation has no command-line mapping and is not an injectable class."""


def _construct(tp: Any) -> Converter:
    return tp  # type: ignore[no-any-return]


def _from_iso(tp: Any) -> Converter:
    return tp.fromisoformat  # type: ignore[no-any-return]


def _encode(tp: Any) -> Converter:
    return lambda text: tp(text.encode())


# "module.QualName" (top-level package only) -> (name shown to users, converter factory, hint)
_SCALARS: dict[str, tuple[str, Callable[[Any], Converter], str]] = {
    "builtins.str": ("str", _construct, ""),
    "builtins.int": ("int", _construct, ""),
    "builtins.float": ("float", _construct, ""),
    "builtins.bytes": ("bytes", _encode, ""),
    "decimal.Decimal": ("Decimal", _construct, "a decimal number"),
    "fractions.Fraction": ("Fraction", _construct, "e.g. 3/4"),
    "pathlib.PurePath": ("path", _construct, ""),
    "pathlib.Path": ("path", _construct, ""),
    "uuid.UUID": ("UUID", _construct, ""),
    "datetime.datetime": ("datetime", _from_iso, "ISO 8601, e.g. 2024-05-01T12:30:00"),
    "datetime.date": ("date", _from_iso, "YYYY-MM-DD"),
    "datetime.time": ("time", _from_iso, "HH:MM[:SS]"),
}

# collection origin -> the container the handler receives
_COLLECTIONS: dict[str, type] = {
    "builtins.list": list,
    "builtins.tuple": tuple,
    "builtins.set": set,
    "builtins.frozenset": frozenset,
    "collections.abc.Sequence": list,
    "collections.abc.Iterable": list,
    "collections.abc.Collection": list,
    "collections.abc.Set": frozenset,
    "collections.abc.MutableSequence": list,
    "collections.abc.MutableSet": set,
}


class TypeInfo:
    """How one annotation appears on the command line.

    Attributes:
        kind: ``"value"`` (one converted value), ``"flag"`` (a bool switch),
            ``"many"`` (several values) or ``"service"`` (injected, never on the command line).
        convert: Converts one command-line string (``None`` for flags and services).
        name: The type name shown in help and error messages (``int``, ``date``...).
        choices: Allowed spellings for Literal/Enum types, else ``None``.
        container: For ``"many"``: the collection type the handler receives.
        nargs: For ``"many"``: ``"+"`` or a fixed count.
        optional: Whether ``None`` is an allowed value (``Optional[T]`` / ``T | None``).
        annotation: The bare type after removing ``Annotated`` and ``Optional``.
        metadata: The ``Annotated`` metadata, outermost first.
    """

    __slots__ = (
        "annotation",
        "choices",
        "container",
        "convert",
        "found",
        "kind",
        "metadata",
        "name",
        "nargs",
        "optional",
    )

    def __init__(
        self,
        kind: str,
        annotation: Any,
        *,
        convert: Converter | None = None,
        name: str = "",
        choices: tuple[str, ...] | None = None,
        container: type | None = None,
        nargs: str | int | None = None,
        optional: bool = False,
        metadata: tuple[Any, ...] = (),
    ) -> None:
        self.kind = kind
        self.annotation = annotation
        self.convert = convert
        self.name = name
        self.choices = choices
        self.container = container
        self.nargs = nargs
        self.optional = optional
        self.metadata = metadata
        self.found: dict[type, Any] | None = None  # metadata by class (signature.py caches)


def _typing_attr(name: str) -> Any:
    """``typing.<name>`` if the program has imported :mod:`typing`, else ``None``."""
    module = sys.modules.get("typing")
    return getattr(module, name, None) if module is not None else None


def _key(cls: type) -> str:
    return f"{cls.__module__.partition('.')[0]}.{cls.__qualname__}"


def unwrap_annotated(annotation: Any) -> tuple[Any, tuple[Any, ...]]:
    """Split ``Annotated[T, *meta]`` into ``(T, meta)``; other annotations get ``()``."""
    metadata: tuple[Any, ...] = ()
    while hasattr(annotation, "__metadata__") and hasattr(annotation, "__origin__"):
        metadata += tuple(annotation.__metadata__)
        annotation = annotation.__origin__
    return annotation, metadata


def _union_members(annotation: Any) -> tuple[Any, ...] | None:
    if isinstance(annotation, types.UnionType):
        return tuple(annotation.__args__)
    union = _typing_attr("Union")
    if union is not None and getattr(annotation, "__origin__", None) is union:
        return tuple(annotation.__args__)
    return None


def strip_optional(annotation: Any) -> tuple[Any, bool]:
    """``(T, True)`` for ``Optional[T]``/``T | None``, ``(annotation, False)`` otherwise.

    Raises:
        UnsupportedAnnotation: A union of several types besides ``None``.
    """
    members = _union_members(annotation)
    if members is None:
        return annotation, False
    rest = tuple(m for m in members if m is not _NONE_TYPE)
    if len(rest) != 1:
        raise UnsupportedAnnotation(f"union {type_name(annotation)} has no command-line mapping")
    return rest[0], len(rest) != len(members)


def is_optional(annotation: Any) -> bool:
    """Whether ``annotation`` accepts ``None`` (``Optional[T]``, ``T | None``)."""
    members = _union_members(unwrap_annotated(annotation)[0])
    return members is not None and _NONE_TYPE in members


def is_bool_flag(annotation: Any) -> bool:
    """Whether ``annotation`` is ``bool`` (possibly ``Optional``/``Annotated``): a ``--flag``."""
    bare = unwrap_annotated(annotation)[0]
    try:
        bare = strip_optional(bare)[0]
    except UnsupportedAnnotation:
        return False
    return unwrap_annotated(bare)[0] is bool


def type_name(annotation: Any) -> str:
    """A short, readable name for an annotation (``int``, ``list[str]``, ``Color``)."""
    if isinstance(annotation, type) and not hasattr(annotation, "__origin__"):
        return annotation.__name__
    return str(annotation).replace("typing.", "")


def _failing(name: str, func: Converter, hint: str) -> Converter:
    """Wrap ``func`` so any conversion failure becomes argparse's usage error."""

    def convert(text: str) -> Any:
        try:
            return func(text)
        except (ValueError, TypeError, ArithmeticError) as exc:
            suffix = f" (expected {hint})" if hint else ""
            raise ArgumentTypeError(f"invalid {name} value: {text!r}{suffix}") from exc

    convert.__name__ = name
    return convert


def _choice_converter(mapping: dict[str, Any], shown: tuple[str, ...]) -> Converter:
    folded = {token.casefold(): value for token, value in mapping.items()}

    def convert(text: str) -> Any:
        if text in mapping:
            return mapping[text]
        if text.casefold() in folded:
            return folded[text.casefold()]
        listing = ", ".join(shown)
        raise ArgumentTypeError(f"invalid choice: {text!r} (choose from {listing})")

    convert.__name__ = "choice"
    return convert


def _enum_info(cls: type[enum.Enum]) -> tuple[Converter, tuple[str, ...]]:
    members = list(cls)
    by_value = all(isinstance(m.value, str) for m in members)
    shown = tuple(m.value if by_value else m.name for m in members)
    mapping: dict[str, Any] = {m.name: m for m in members}
    mapping.update({str(m.value): m for m in members})
    mapping.update(dict(zip(shown, members)))
    return _choice_converter(mapping, shown), shown


def _literal_info(annotation: Any) -> tuple[Converter, tuple[str, ...]] | None:
    literal = _typing_attr("Literal")
    if literal is None or getattr(annotation, "__origin__", None) is not literal:
        return None
    values = annotation.__args__
    shown = tuple(v.value if isinstance(v, enum.Enum) else str(v) for v in values)
    return _choice_converter(dict(zip(shown, values)), shown), tuple(str(s) for s in shown)


def _scalar(annotation: Any) -> tuple[Converter, str, tuple[str, ...] | None] | None:
    """(converter, name, choices) for a single-valued command-line type, else ``None``."""
    if annotation is _typing_attr("Any"):
        return str, "str", None
    literal = _literal_info(annotation)
    if literal is not None:
        return literal[0], "choice", literal[1]
    if not _is_plain_class(annotation):
        return None
    if issubclass(annotation, enum.Enum):
        convert, shown = _enum_info(annotation)
        return convert, annotation.__name__, shown
    for cls in annotation.__mro__:
        row = _SCALARS.get(_key(cls))
        if row is not None:
            name, factory, hint = row
            return _failing(name, factory(annotation), hint), name, None
    return None


def resolve_argparse_type(annotation: Any) -> Converter | None:
    """The converter argparse should use for one value of ``annotation``.

    ``Annotated`` and ``Optional`` are looked through; for a collection the item's converter
    is returned. Conversion failures raise :class:`argparse.ArgumentTypeError`, which argparse
    reports as a usage error naming the argument.

    Args:
        annotation: A parameter annotation.

    Returns:
        A callable converting one string, or ``None`` when the annotation is not a
        command-line type (an injected service, or ``bool``, which is a flag).
    """
    try:
        info = classify(annotation)
    except UnsupportedAnnotation:
        return None
    return info.convert


def _collection(annotation: Any) -> TypeInfo | None:
    origin = getattr(annotation, "__origin__", None)
    if origin is None and isinstance(annotation, type) and _key(annotation) in _COLLECTIONS:
        origin, args = annotation, ()
    else:
        args = tuple(getattr(annotation, "__args__", ()))
    if not isinstance(origin, type) or _key(origin) not in _COLLECTIONS:
        return None
    container = _COLLECTIONS[_key(origin)]
    nargs: str | int = "+"
    if container is tuple and args and not (len(args) == 2 and args[1] is Ellipsis):
        if len(set(args)) != 1:
            raise UnsupportedAnnotation(
                f"{type_name(annotation)}: tuples with mixed item types have no command-line "
                "mapping; use tuple[T, ...]"
            )
        nargs = len(args)
    item = args[0] if args else str
    scalar = _scalar(unwrap_annotated(item)[0])
    if scalar is None:
        raise UnsupportedAnnotation(f"{type_name(annotation)}: items must be command-line types")
    convert, name, choices = scalar
    return TypeInfo(
        "many", annotation, convert=convert, name=name, choices=choices,
        container=container, nargs=nargs,
    )


def _is_plain_class(annotation: Any) -> bool:
    """A real class, not a parametrized generic (on Python 3.10, ``isinstance(dict[str, int],
    type)`` is true)."""
    return isinstance(annotation, type) and not hasattr(annotation, "__origin__")


def classify(annotation: Any) -> TypeInfo:
    """Decide how a parameter annotated ``annotation`` appears on the command line.

    Args:
        annotation: The evaluated annotation (``inspect.Parameter.empty`` is not accepted;
            pass ``str`` for unannotated parameters).

    Returns:
        The :class:`TypeInfo` for the annotation.

    Raises:
        UnsupportedAnnotation: The annotation is neither a command-line type nor a class
            that could be injected (e.g. ``dict[str, int]`` or ``int | str``).
    """
    bare, metadata = unwrap_annotated(annotation)
    bare, optional = strip_optional(bare)
    bare, inner = unwrap_annotated(bare)
    metadata += inner
    info = _classify_bare(bare)
    info.optional = optional
    info.metadata = metadata
    return info


def _classify_bare(bare: Any) -> TypeInfo:
    if bare is bool:
        return TypeInfo("flag", bare, name="bool")
    many = _collection(bare)
    if many is not None:
        return many
    scalar = _scalar(bare)
    if scalar is not None:
        convert, name, choices = scalar
        return TypeInfo("value", bare, convert=convert, name=name, choices=choices)
    if _is_plain_class(bare):
        return TypeInfo("service", bare, name=bare.__name__)
    raise UnsupportedAnnotation(f"{type_name(bare)} has no command-line mapping")
