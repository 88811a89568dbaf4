"""utils.typing and utils.reflection: the public helpers."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Annotated, Any, Optional

import pytest

from registers.cli.utils.reflection import EMPTY, get_params, parse_docstring
from registers.cli.utils.typing import is_bool_flag, is_optional, resolve_argparse_type


@pytest.mark.parametrize(
    ("annotation", "expected"),
    [(Optional[int], True), (int | None, True), (int, False),  # noqa: UP045
     (Annotated[Optional[str], "x"], True)],  # noqa: UP045
)
def test_is_optional(annotation: Any, expected: bool) -> None:
    assert is_optional(annotation) is expected


@pytest.mark.parametrize(
    ("annotation", "expected"),
    [(bool, True), (Optional[bool], True), (int, False), (Annotated[bool, "x"], True)],  # noqa: UP045
)
def test_is_bool_flag(annotation: Any, expected: bool) -> None:
    assert is_bool_flag(annotation) is expected


def test_resolve_argparse_type() -> None:
    assert resolve_argparse_type(int)("3") == 3  # type: ignore[misc]
    assert resolve_argparse_type(Optional[Path])("a") == Path("a")  # type: ignore[misc]  # noqa: UP045
    assert resolve_argparse_type(list[int])("4") == 4  # type: ignore[misc]
    assert resolve_argparse_type(bool) is None
    assert resolve_argparse_type(dict[str, int]) is None


def test_get_params_looks_through_wraps() -> None:
    def inner(a: int, b: str = "x", *, c: bool = False) -> None:
        """Do.

        Args:
            a: The a.
        """

    @functools.wraps(inner)
    def outer(*args: Any, **kwargs: Any) -> None: ...

    params = get_params(outer)
    assert [(p.name, p.annotation, p.default, p.kind) for p in params] == [
        ("a", int, EMPTY, "positional-or-keyword"),
        ("b", str, "x", "positional-or-keyword"),
        ("c", bool, False, "keyword-only"),
    ]
    assert params[0].help == "The a."


def test_get_params_of_callable_object_and_method() -> None:
    class Tool:
        def run(self, n: int) -> None: ...

        def __call__(self, m: str) -> None: ...

    assert [p.name for p in get_params(Tool().run)] == ["n"]
    assert [p.name for p in get_params(Tool())] == ["m"]


def test_parse_docstring() -> None:
    doc = """Greet someone.

    Args:
        name (str): Who.
        times: How often,
            at most ten.

    Returns:
        Text.
    """
    assert parse_docstring(doc) == (
        "Greet someone.",
        {"name": "Who.", "times": "How often, at most ten."},
    )
