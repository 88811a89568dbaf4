"""SPEC D10: HasMany, BelongsTo, HasManyThrough and prefetch()."""

from types import SimpleNamespace
from typing import Any

import pytest
from pydantic import BaseModel

import registers.db
import registers.db.relations
from registers.db import RelationshipError, database_registry, prefetch
from registers.db.relations import BelongsTo, HasMany, HasManyThrough


def _declare(url: str) -> SimpleNamespace:
    @database_registry(url, table_name="authors")
    class Author(BaseModel):
        id: int | None = None
        name: str

    @database_registry(url, table_name="posts")
    class Post(BaseModel):
        id: int | None = None
        author_id: int
        title: str

    @database_registry(url, table_name="post_tags")
    class PostTag(BaseModel):
        id: int | None = None
        post_id: int
        tag_id: int

    @database_registry(url, table_name="tags")
    class Tag(BaseModel):
        id: int | None = None
        name: str

    Author.posts = HasMany(Post, foreign_key="author_id")
    Post.author = BelongsTo(Author, local_key="author_id")
    Post.tags = HasManyThrough(Tag, through=PostTag, source_key="post_id", target_key="tag_id")
    return SimpleNamespace(Author=Author, Post=Post, PostTag=PostTag, Tag=Tag)


@pytest.fixture
def m(database_url: str) -> SimpleNamespace:
    models = _declare(database_url)
    ada = models.Author.objects.create(name="Ada")
    bob = models.Author.objects.create(name="Bob")
    models.Author.objects.create(name="Nobody")
    models.Post.objects.bulk_create(
        [
            {"author_id": ada.id, "title": "Notes"},
            {"author_id": ada.id, "title": "Engines"},
            {"author_id": bob.id, "title": "Hello"},
            {"author_id": 999, "title": "Orphan"},
        ]
    )
    models.Tag.objects.bulk_create([{"name": "math"}, {"name": "history"}, {"name": "unused"}])
    models.PostTag.objects.bulk_create(
        [
            {"post_id": 1, "tag_id": 1},
            {"post_id": 1, "tag_id": 2},
            {"post_id": 2, "tag_id": 1},
            {"post_id": 2, "tag_id": 1},  # a duplicate link
            {"post_id": 2, "tag_id": 1},
        ]
    )
    return models


def titles(posts: list[Any]) -> list[str]:
    return sorted(p.title for p in posts)


# -------------------------------------------------------------------------- the descriptors


def test_has_many_returns_the_related_records(m: SimpleNamespace) -> None:
    posts = m.Author.objects.require(1).posts

    assert isinstance(posts, list)
    assert all(isinstance(p, m.Post) for p in posts)
    assert titles(posts) == ["Engines", "Notes"]
    assert titles(m.Author.objects.require(2).posts) == ["Hello"]


def test_has_many_without_related_records_is_an_empty_list(m: SimpleNamespace) -> None:
    assert m.Author.objects.require(3).posts == []


def test_belongs_to_returns_the_owner(m: SimpleNamespace) -> None:
    author = m.Post.objects.require(3).author

    assert isinstance(author, m.Author)
    assert author == m.Author(id=2, name="Bob")


def test_belongs_to_with_a_dangling_key_is_none(m: SimpleNamespace) -> None:
    assert m.Post.objects.require(4).author is None


def test_has_many_through_returns_the_linked_records(m: SimpleNamespace) -> None:
    tags = m.Post.objects.require(1).tags

    assert all(isinstance(t, m.Tag) for t in tags)
    assert sorted(t.name for t in tags) == ["history", "math"]
    assert m.Post.objects.require(3).tags == []


def test_has_many_through_de_duplicates(m: SimpleNamespace) -> None:
    tags = m.Post.objects.require(2).tags

    assert [t.name for t in tags] == ["math"]


def test_relations_reflect_the_current_database_state(m: SimpleNamespace) -> None:
    author = m.Author.objects.require(3)
    assert author.posts == []

    m.Post.objects.create(author_id=3, title="Late")

    assert titles(author.posts) == ["Late"]


def test_relations_work_on_instances_from_any_read(m: SimpleNamespace) -> None:
    from_filter = m.Author.objects.filter(name="Ada")[0]
    from_all = next(a for a in m.Author.objects.all() if a.id == 1)
    created = m.Author.objects.create(name="New")

    assert titles(from_filter.posts) == ["Engines", "Notes"]
    assert titles(from_all.posts) == ["Engines", "Notes"]
    assert created.posts == []


@pytest.mark.parametrize("count", [1, 40])
def test_has_many_issues_one_statement_whatever_the_row_count(
    database_url: str, count_statements: Any, count: int
) -> None:
    models = _declare(database_url)
    author = models.Author.objects.create(name="Ada")
    models.Post.objects.bulk_create(
        [{"author_id": author.id, "title": f"p{i}"} for i in range(count)]
    )

    with count_statements(database_url) as log:
        posts = author.posts

    assert len(posts) == count
    assert len(log) == 1


@pytest.mark.parametrize("count", [1, 40])
def test_has_many_through_issues_one_statement_whatever_the_row_count(
    database_url: str, count_statements: Any, count: int
) -> None:
    models = _declare(database_url)
    post = models.Post.objects.create(author_id=1, title="p")
    tags = models.Tag.objects.bulk_create([{"name": f"t{i}"} for i in range(count)])
    models.PostTag.objects.bulk_create([{"post_id": post.id, "tag_id": t.id} for t in tags])

    with count_statements(database_url) as log:
        loaded = post.tags

    assert len(loaded) == count
    assert len(log) == 1


def test_belongs_to_issues_one_statement(
    m: SimpleNamespace, database_url: str, count_statements: Any
) -> None:
    post = m.Post.objects.require(1)

    with count_statements(database_url) as log:
        assert post.author.name == "Ada"

    assert len(log) == 1


def test_loading_a_record_does_not_load_its_relations(
    m: SimpleNamespace, database_url: str, count_statements: Any
) -> None:
    with count_statements(database_url) as log:
        m.Post.objects.require(1)
        m.Author.objects.all()

    assert len(log) == 2


@pytest.mark.parametrize(
    ("model", "key", "relation", "value"),
    [
        ("Author", 1, "posts", []),
        ("Post", 1, "author", None),
        ("Post", 1, "tags", []),
    ],
)
def test_relations_are_read_only(
    m: SimpleNamespace, model: str, key: int, relation: str, value: Any
) -> None:
    record = getattr(m, model).objects.require(key)
    before = getattr(record, relation)

    with pytest.raises(RelationshipError, match="read-only relationship"):
        setattr(record, relation, value)

    assert getattr(record, relation) == before


def test_relations_are_not_fields(m: SimpleNamespace) -> None:
    author = m.Author.objects.require(1)
    post = m.Post.objects.require(1)

    assert author.model_dump() == {"id": 1, "name": "Ada"}
    assert post.model_dump() == {"id": 1, "author_id": 1, "title": "Notes"}
    assert "posts" not in m.Author.model_json_schema()["properties"]
    assert "posts" not in m.Author.model_fields


def test_relation_descriptors_do_not_break_saving(m: SimpleNamespace) -> None:
    author = m.Author.objects.require(1)
    _ = author.posts

    author.name = "Ada L."
    author.save()

    assert m.Author.objects.require(1).name == "Ada L."


# ------------------------------------------------------------------------------ misconfigured


def _assign_and_access(owner: Any, attr: str, descriptor_factory: Any, instance: Any) -> None:
    setattr(owner, attr, descriptor_factory())
    getattr(instance, attr)


@pytest.mark.parametrize(
    ("case", "named"),
    [
        ("has-many-unregistered", "Loose"),
        ("has-many-unknown-key", "writer_id"),
        ("belongs-to-unknown-key", "writer_id"),
        ("belongs-to-unregistered", "Loose"),
        ("through-unknown-source", "article_id"),
        ("through-unknown-target", "label_id"),
        ("through-unregistered", "Loose"),
    ],
)
def test_misconfigured_relationship_raises_relationship_error(
    database_url: str, case: str, named: str
) -> None:
    models = _declare(database_url)
    author = models.Author.objects.create(name="Ada")
    post = models.Post.objects.create(author_id=author.id, title="p")

    class Loose(BaseModel):
        id: int | None = None
        author_id: int
        post_id: int = 0
        tag_id: int = 0

    A, P, T, PT = models.Author, models.Post, models.Tag, models.PostTag
    factories = {
        "has-many-unregistered": (A, author, lambda: HasMany(Loose, foreign_key="author_id")),
        "has-many-unknown-key": (A, author, lambda: HasMany(P, foreign_key="writer_id")),
        "belongs-to-unknown-key": (P, post, lambda: BelongsTo(A, local_key="writer_id")),
        "belongs-to-unregistered": (P, post, lambda: BelongsTo(Loose, local_key="author_id")),
        "through-unknown-source": (
            P,
            post,
            lambda: HasManyThrough(T, through=PT, source_key="article_id", target_key="tag_id"),
        ),
        "through-unknown-target": (
            P,
            post,
            lambda: HasManyThrough(T, through=PT, source_key="post_id", target_key="label_id"),
        ),
        "through-unregistered": (
            P,
            post,
            lambda: HasManyThrough(T, through=Loose, source_key="post_id", target_key="tag_id"),
        ),
    }
    owner, instance, factory = factories[case]

    with pytest.raises(RelationshipError) as info:
        _assign_and_access(owner, "broken", factory, instance)

    assert named in str(info.value)


# ---------------------------------------------------------------------------------- prefetch


def test_prefetch_is_exported_from_both_modules() -> None:
    assert registers.db.prefetch is registers.db.relations.prefetch


def test_prefetch_has_many_uses_one_statement(
    m: SimpleNamespace, database_url: str, count_statements: Any
) -> None:
    authors = m.Author.objects.filter(order_by="id")

    with count_statements(database_url) as loading:
        prefetch(authors, "posts")
    with count_statements(database_url) as reading:
        loaded = [titles(a.posts) for a in authors]

    assert len(loading) == 1
    assert reading == []
    assert loaded == [["Engines", "Notes"], ["Hello"], []]


def test_prefetch_several_relations_uses_one_statement_each(
    m: SimpleNamespace, database_url: str, count_statements: Any
) -> None:
    posts = m.Post.objects.filter(order_by="id")

    with count_statements(database_url) as loading:
        prefetch(posts, "author", "tags")
    with count_statements(database_url) as reading:
        authors = [p.author.name if p.author else None for p in posts]
        tags = [sorted(t.name for t in p.tags) for p in posts]

    assert len(loading) == 2
    assert reading == []
    assert authors == ["Ada", "Ada", "Bob", None]
    assert tags == [["history", "math"], ["math"], [], []]


@pytest.mark.parametrize("count", [3, 60])
def test_prefetch_statement_count_does_not_grow_with_records(
    database_url: str, count_statements: Any, count: int
) -> None:
    models = _declare(database_url)
    authors = models.Author.objects.bulk_create([{"name": f"a{i}"} for i in range(count)])
    models.Post.objects.bulk_create(
        [{"author_id": a.id, "title": f"{a.name}-{j}"} for a in authors for j in range(2)]
    )
    authors = models.Author.objects.all()

    with count_statements(database_url) as log:
        prefetch(authors, "posts")

    assert len(log) == 1
    assert all(len(a.posts) == 2 for a in authors)


def test_prefetch_of_no_records_issues_no_statement(
    m: SimpleNamespace, database_url: str, count_statements: Any
) -> None:
    with count_statements(database_url) as log:
        prefetch([], "posts")

    assert log == []


def test_prefetch_unknown_relation_raises_relationship_error(m: SimpleNamespace) -> None:
    authors = m.Author.objects.all()

    with pytest.raises(RelationshipError) as info:
        prefetch(authors, "comments")

    assert "comments" in str(info.value)


def test_prefetched_records_still_dump_cleanly(m: SimpleNamespace) -> None:
    authors = m.Author.objects.filter(order_by="id")
    prefetch(authors, "posts")

    assert authors[0].model_dump() == {"id": 1, "name": "Ada"}


def test_a_relation_to_an_unregistered_model_fails_when_declared() -> None:
    class Unregistered(BaseModel):
        id: int | None = None
        author_id: int

    with pytest.raises(RelationshipError, match="Unregistered is not registered"):
        HasMany(Unregistered, foreign_key="author_id")
    with pytest.raises(RelationshipError, match="Unregistered is not registered"):
        BelongsTo(Unregistered, local_key="author_id")


def test_a_relation_to_a_parametrized_generic_fails_when_declared() -> None:
    class Item(BaseModel):
        id: int | None = None

    # Python 3.10: list[Item] passes isinstance(..., type); issubclass() would raise TypeError.
    for target in (list[Item], dict[str, Any]):
        with pytest.raises(RelationshipError, match="must be a registered model class"):
            HasMany(target, foreign_key="author_id")
        with pytest.raises(RelationshipError, match="must be a registered model class"):
            BelongsTo(target, local_key="author_id")


def test_a_relation_naming_an_unknown_target_field_fails_when_declared(database_url: str) -> None:
    @database_registry(database_url, table_name="writers")
    class Writer(BaseModel):
        id: int | None = None

    with pytest.raises(RelationshipError, match="foreign_key: Writer has no field 'nope'"):
        HasMany(Writer, foreign_key="nope")
