"""How a command's return value is shown: ``str`` as is, data as indented JSON.

Pydantic models are recognised by their ``model_dump`` method, so pydantic is never
imported here.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = ["render"]


def _is_model(value: object) -> bool:
    return not isinstance(value, type) and callable(getattr(value, "model_dump", None))


def _jsonable(value: Any) -> Any:
    if _is_model(value):
        return value.model_dump(mode="json")
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=str)
    enum_value = getattr(value, "value", None)
    if enum_value is not None and hasattr(type(value), "__members__"):
        return enum_value
    return str(value)


def render(result: Any) -> str | None:
    """The text printed for a command's return value, or ``None`` to print nothing."""
    if result is None:
        return None
    if isinstance(result, str):
        return result
    if _is_model(result) or isinstance(result, (dict, list, tuple)):
        import json

        data = result.model_dump(mode="json") if _is_model(result) else result
        return json.dumps(data, indent=2, default=_jsonable, ensure_ascii=False)
    return str(result)
