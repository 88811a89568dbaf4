"""Lazy, read-only relationship descriptors and ``prefetch``.

Assign them after the classes are decorated (this sidesteps pydantic's metaclass and
forward references)::

    Author.posts = HasMany(Post, foreign_key="author_id")
    Post.author = BelongsTo(Author, local_key="author_id")
    Post.tags = HasManyThrough(Tag, through=PostTag, source_key="post_id", target_key="tag_id")

Each access runs one query (a join for ``HasManyThrough``); ``prefetch(records, "posts")``
loads a relation for a whole list in one query per relation.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Generic, TypeVar, overload

from pydantic import BaseModel

from registers.db.exceptions import RelationshipError
from registers.db.typing_utils import is_model_class

if TYPE_CHECKING:
    from typing_extensions import Self


__all__ = ["BelongsTo", "HasMany", "HasManyThrough", "Relationship", "prefetch"]

_PREFETCHED = "__registers_prefetched__"

_T = TypeVar("_T")  # what reading the relationship on an instance gives
_M = TypeVar("_M", bound=BaseModel)  # the related model
_S = TypeVar("_S", bound=Sequence[BaseModel])


def _manager(model: Any, role: str) -> Any:
    # Any: the manager's modules import this one (relation lookups), not the reverse.
    if not is_model_class(model):
        raise RelationshipError(f"{role} must be a registered model class, got {model!r}")
    for value in vars(model).values():
        if type(value).__name__ == "DatabaseRegistry" and getattr(value, "model", None) is model:
            return value
    raise RelationshipError(
        f"{model.__name__} is not registered: decorate it with @database_registry first"
    )


def _check_field(model: type[BaseModel], field: str, option: str) -> None:
    if not isinstance(field, str) or field not in model.model_fields:
        raise RelationshipError(
            f"{option}: {model.__name__} has no field {field!r}", model=model.__name__
        )


class Relationship(property, Generic[_T]):
    """Base descriptor: lazy, read-only, cached per instance only via :func:`prefetch`.

    A ``property`` subclass so pydantic hands assignments on instances to ``__set__``
    (which refuses them with a :class:`RelationshipError`) instead of its own error.
    Generic in what an instance read returns, so a typed declaration in the owner's body
    (``posts: ClassVar[HasMany[Post]]``) makes ``author.posts`` a ``list[Post]``.
    """

    name: str = "relationship"
    owner: type[BaseModel] | None = None
    _bound: type[BaseModel] | None = None  # the class last checked (validate() ran for it)

    def __set_name__(self, owner: type[BaseModel], name: str) -> None:
        self.name = name
        self.owner = owner

    def _bind(self, owner: type[BaseModel]) -> None:
        if self._bound is owner:  # checked already: every access after the first is free
            return
        if self.owner is None:
            self.owner = owner
        if self.name == "relationship":
            for attr, value in vars(owner).items():
                if value is self:
                    self.name = attr
        self.validate()
        self._bound = owner

    def validate(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    @overload
    def __get__(self, instance: None, owner: type | None = None, /) -> Self: ...

    @overload
    def __get__(self, instance: object, owner: type | None = None, /) -> _T: ...

    def __get__(self, instance: Any, owner: type | None = None, /) -> Any:
        if instance is None:
            return self
        self._bind(type(instance))
        cache = instance.__dict__.get(_PREFETCHED)
        if cache is not None and self.name in cache:
            return cache[self.name]
        return self.load(instance)

    def __set__(self, instance: Any, value: Any, /) -> None:
        raise RelationshipError(
            f"{type(instance).__name__}.{self.name} is a read-only relationship; "
            "change the key fields instead"
        )

    def load(self, instance: BaseModel) -> Any:  # pragma: no cover - overridden
        raise NotImplementedError

    def load_many(self, instances: Sequence[BaseModel]) -> list[Any]:  # pragma: no cover
        raise NotImplementedError


class HasMany(Relationship[list[_M]]):
    """One-to-many: ``Author.posts = HasMany(Post, foreign_key="author_id")``."""

    def __init__(self, model: type[_M], *, foreign_key: str, local_key: str | None = None):
        self.model = model
        self.foreign_key = foreign_key
        self.local_key = local_key
        # What can be checked before the owner is known is checked now.
        _manager(model, "HasMany target")
        _check_field(model, foreign_key, "foreign_key")

    def validate(self) -> None:
        target = _manager(self.model, "HasMany target")
        _check_field(self.model, self.foreign_key, "foreign_key")
        assert self.owner is not None
        owner = _manager(self.owner, "HasMany owner")
        self.local_key = self.local_key or owner.key
        _check_field(self.owner, self.local_key, "local_key")
        self._target = target

    def load(self, instance: BaseModel) -> list[Any]:
        value = instance.__dict__.get(self.local_key or "")
        if value is None:
            return []
        criteria: dict[str, Any] = {self.foreign_key: value}
        return self._target.filter(order_by=self._target.key, **criteria)  # type: ignore[no-any-return]

    def load_many(self, instances: Sequence[BaseModel]) -> list[Any]:
        keys = {i.__dict__.get(self.local_key or "") for i in instances} - {None}
        criteria: dict[str, Any] = {f"{self.foreign_key}__in": sorted(keys, key=repr)}
        found = self._target.filter(order_by=self._target.key, **criteria) if keys else []
        groups: dict[Any, list[Any]] = {}
        for item in found:
            groups.setdefault(item.__dict__[self.foreign_key], []).append(item)
        return [groups.get(i.__dict__.get(self.local_key or ""), []) for i in instances]


class BelongsTo(Relationship[_M | None]):
    """Many-to-one: ``Post.author = BelongsTo(Author, local_key="author_id")``."""

    def __init__(self, model: type[_M], *, local_key: str, remote_key: str | None = None):
        self.model = model
        self.local_key = local_key
        self.remote_key = remote_key
        target = _manager(model, "BelongsTo target")
        _check_field(model, remote_key or target.key, "remote_key")

    def validate(self) -> None:
        target = _manager(self.model, "BelongsTo target")
        assert self.owner is not None
        _check_field(self.owner, self.local_key, "local_key")
        self.remote_key = self.remote_key or target.key
        _check_field(self.model, self.remote_key, "remote_key")
        self._target = target

    def load(self, instance: BaseModel) -> Any:
        value = instance.__dict__.get(self.local_key)
        if value is None:
            return None
        return self._target.first(**{self.remote_key or "": value})

    def load_many(self, instances: Sequence[BaseModel]) -> list[Any]:
        keys = {i.__dict__.get(self.local_key) for i in instances} - {None}
        remote = self.remote_key or ""
        criteria: dict[str, Any] = {f"{remote}__in": sorted(keys, key=repr)}
        found = self._target.filter(**criteria) if keys else []
        by_key = {item.__dict__[remote]: item for item in found}
        return [by_key.get(i.__dict__.get(self.local_key)) for i in instances]


class HasManyThrough(Relationship[list[_M]]):
    """Many-to-many through a join model, loaded with one JOIN, de-duplicated.

    ``Post.tags = HasManyThrough(Tag, through=PostTag, source_key="post_id",
    target_key="tag_id")``
    """

    def __init__(self, model: type[_M], *, through: type[BaseModel], source_key: str,
                 target_key: str):
        self.model = model
        self.through = through
        self.source_key = source_key
        self.target_key = target_key
        _manager(model, "HasManyThrough target")
        _manager(through, "HasManyThrough through")
        _check_field(through, source_key, "source_key")
        _check_field(through, target_key, "target_key")

    def validate(self) -> None:
        self._target = _manager(self.model, "HasManyThrough target")
        self._through = _manager(self.through, "HasManyThrough through")
        assert self.owner is not None
        self._owner = _manager(self.owner, "HasManyThrough owner")
        _check_field(self.through, self.source_key, "source_key")
        _check_field(self.through, self.target_key, "target_key")
        if self._target.database is not self._through.database:
            raise RelationshipError(
                f"{self.model.__name__} and {self.through.__name__} live in different databases"
            )

    def _sql(self, count: int) -> str:
        target, through = self._target, self._through
        q, p = target.dialect.quote, target.dialect.placeholder
        t, j = q(target.table_name), q(through.table_name)
        columns = ", ".join(f"{t}.{q(n)}" for n in target.names)
        return (
            f"SELECT DISTINCT {columns}, {j}.{q(self.source_key)} FROM {t} "
            f"JOIN {j} ON {j}.{q(self.target_key)} = {t}.{q(target.key)} "
            f"WHERE {j}.{q(self.source_key)} IN ({', '.join([p] * count)}) "
            f"ORDER BY {t}.{q(target.key)}"
        )

    def _grouped(self, keys: list[Any]) -> dict[Any, list[Any]]:
        if not keys:
            return {}
        rows = self._target.rows(self._sql(len(keys)), keys)
        groups: dict[Any, list[Any]] = {}
        for row in rows:
            groups.setdefault(row[-1], []).append(self._target.from_row(row[:-1]))
        return groups

    def load(self, instance: BaseModel) -> list[Any]:
        key = instance.__dict__.get(self._owner.key)
        if key is None:
            return []
        return self._grouped([key]).get(key, [])

    def load_many(self, instances: Sequence[BaseModel]) -> list[Any]:
        keys = sorted({i.__dict__.get(self._owner.key) for i in instances} - {None}, key=repr)
        groups = self._grouped(keys)
        return [groups.get(i.__dict__.get(self._owner.key), []) for i in instances]


def prefetch(records: _S, *relations: str) -> _S:
    """Load ``relations`` for every record with one query per relation.

    Afterwards ``record.<relation>`` reads the loaded value without a query. Returns
    ``records`` itself (so its type, e.g. ``list[User]``, is kept).

    Raises:
        RelationshipError: a name is not a relationship of the records' class.
    """
    if not records:
        return records
    cls = type(records[0])
    for name in relations:
        descriptor = getattr(cls, name, None)
        if not isinstance(descriptor, Relationship):
            raise RelationshipError(f"{cls.__name__} has no relationship {name!r}")
        descriptor._bind(cls)
        for record, value in zip(records, descriptor.load_many(records)):
            record.__dict__.setdefault(_PREFETCHED, {})[name] = value
    return records
