"""The manager's aggregate shortcuts: ``Model.objects.aggregate()``, ``aaggregate()``,
``values()`` and ``values_list()``, each the same call on ``Model.objects.where()`` (see
:class:`~registers.db.queryset.Query`, :mod:`registers.db.grouping`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Generic, TypeVar

from pydantic import BaseModel

from registers.db.aggregates import Aggregate
from registers.db.queryset import Query

if TYPE_CHECKING:
    from registers.db.query import Q

__all__ = ["AggregateOperations"]

M = TypeVar("M", bound=BaseModel)


class AggregateOperations(Generic[M]):
    """``aggregate``, ``aaggregate``, ``values``, ``values_list`` of ``Model.objects``."""

    if TYPE_CHECKING:
        def _where(self, q: tuple[Q, ...], criteria: dict[str, Any]) -> Query[M]: ...

    def aggregate(self, *args: Aggregate, **aggregates: Aggregate) -> dict[str, Any]:
        """Aggregates over every row: ``aggregate(n=Count("id"), total=Sum("score"))``
        (``where(...).aggregate(...)`` for some rows; see :meth:`Query.aggregate`)."""
        return self._where((), {}).aggregate(*args, **aggregates)

    async def aaggregate(self, *args: Aggregate, **aggregates: Aggregate) -> dict[str, Any]:
        """Async :meth:`aggregate`."""
        return await self._where((), {}).aaggregate(*args, **aggregates)

    def values(self, *fields: str) -> Query[dict[str, Any]]:
        """A lazy query of dicts of ``fields`` (``where().values(...)``); follow it with
        ``annotate(...)`` to group by them."""
        return self._where((), {}).values(*fields)

    def values_list(self, *fields: str, flat: bool = False) -> Query[Any]:
        """A lazy query of tuples of ``fields`` (``where().values_list(...)``)."""
        return self._where((), {}).values_list(*fields, flat=flat)
