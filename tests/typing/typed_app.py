"""What the checkers infer for the documented declarations (issue 19, SPEC T1).

``tests/typing/test_type_check.py`` runs mypy --strict and pyright (strict) on this file:
every ``assert_type`` is an error under either checker if the inferred type differs. It is
also imported and run as ordinary code, so each line really works at run time.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, ClassVar

from typing_extensions import assert_type

from registers.cli import CommandRegistry
from registers.db import (
    Avg,
    BelongsTo,
    Count,
    DatabaseRegistry,
    HasMany,
    HasManyThrough,
    Model,
    Query,
    Sum,
    database_registry,
    prefetch,
)

URL = "sqlite:///typed_app.db"


@database_registry(URL, unique_fields=["email"])
class User(Model):
    id: int | None = None
    name: str
    email: str
    password: str = ""

    posts: ClassVar[HasMany[Post]]


@database_registry(URL)
class Post(Model):
    id: int | None = None
    title: str
    author_id: int | None = None

    author: ClassVar[BelongsTo[User]]
    tags: ClassVar[HasManyThrough[Tag]]


@database_registry(URL)
class Tag(Model):
    id: int | None = None
    label: str


@database_registry(URL)
class PostTag(Model):
    id: int | None = None
    post_id: int
    tag_id: int


User.posts = HasMany(Post, foreign_key="author_id")
Post.author = BelongsTo(User, local_key="author_id")
Post.tags = HasManyThrough(Tag, through=PostTag, source_key="post_id", target_key="tag_id")

cli = CommandRegistry(prog="typed")


@cli.register(ops=["-g"], description="Greet someone")
def greet(name: str, times: int = 1) -> str:
    return " ".join([f"Hello, {name}!"] * times)


def check_sync() -> None:
    assert_type(User.objects, DatabaseRegistry[User])
    User.create_schema()
    assert_type(User.schema_exists(), bool)
    ada = User.objects.create(name="Ada", email="ada@example.com", password="s3cret-pass")
    assert_type(ada, User)
    assert_type(User.objects.get(1), User | None)
    assert_type(User.objects.get(email="ada@example.com"), User | None)
    assert_type(User.objects.require(1), User)
    assert_type(User.objects.filter(name__startswith="A"), list[User])
    assert_type(User.objects.all(), list[User])
    assert_type(User.objects.first(), User | None)
    assert_type(User.objects.count(), int)
    assert_type(User.objects.upsert(name="Ada L.", email="ada@example.com"), User)
    made, created = User.objects.get_or_create(email="eve@example.com", defaults={"name": "Eve"})
    assert_type(made, User)
    assert_type(created, bool)
    assert_type(User.objects.update_or_create(email="eve@example.com", defaults={"name": "E"}),
                tuple[User, bool])
    assert_type(User.objects.bulk_update([made], ["name"]), int)
    assert_type(User.objects.in_bulk([made.id]), dict[Any, User])
    assert_type(User.objects.raw("SELECT * FROM users"), list[User])
    assert_type(User.objects.update_where({"id": 1}, name="Ada"), list[User])
    assert_type(User.objects.bulk_create([{"name": "B", "email": "b@example.com"}]), list[User])
    for user in User.objects.iterate():
        assert_type(user, User)
    assert_type(ada.save(), User)
    assert_type(ada.refresh(), User)
    assert_type(ada.verify_password("s3cret-pass"), bool)
    post = Post.objects.create(title="Hi", author_id=ada.id)
    tag = Tag.objects.create(label="intro")
    PostTag.objects.create(post_id=post.id or 0, tag_id=tag.id or 0)
    assert_type(ada.posts, list[Post])
    assert_type(post.author, User | None)
    assert_type(post.tags, list[Tag])
    users = prefetch(User.objects.all(), "posts")
    assert_type(users, list[User])
    assert users[0].posts[0].title == "Hi"
    as_declared: Callable[[str, int], str] = greet  # the decorator keeps the signature
    assert as_declared("Ada", 2) == "Hello, Ada! Hello, Ada!"
    assert_type(greet("Ada"), str)
    totals = User.objects.where(name="Ada").aggregate(n=Count("id"), posts=Count("posts"))
    assert_type(totals, dict[str, Any])
    assert totals == {"n": 1, "posts": 1}
    assert_type(User.objects.aggregate(Sum("id")), dict[str, Any])
    groups = User.objects.values("name").annotate(n=Count("id"), mean=Avg("id")).order_by("-n")
    assert_type(groups, Query[dict[str, Any]])
    for group in groups.where(n__gte=1):
        assert_type(group, dict[str, Any])
    assert_type(ada.delete(), bool)
    with User.objects.engine.connect() as conn:
        conn.exec_driver_sql("SELECT 1")
    assert_type(User.objects.schema.column_names(), list[str])


async def check_async() -> None:
    grace = await User.objects.acreate(name="Grace", email="grace@example.com")
    assert_type(grace, User)
    assert_type(await User.objects.aget(grace.id), User | None)
    assert_type(await User.objects.afilter(name="Grace"), list[User])
    assert_type(await User.objects.aget_or_create(email="grace@example.com"), tuple[User, bool])
    assert_type(await User.objects.aupdate_or_create(email="grace@example.com"),
                tuple[User, bool])
    assert_type(await User.objects.abulk_update([grace], ["name"]), int)
    assert_type(await User.objects.ain_bulk(), dict[Any, User])
    assert_type(await User.objects.araw("SELECT * FROM users"), list[User])
    assert_type(await grace.asave(), User)
    assert_type(await grace.arefresh(), User)
    assert_type(await User.objects.aaggregate(n=Count("id")), dict[str, Any])
    grouped = User.objects.values("name").annotate(n=Count("id"))
    assert_type(await grouped.aall(), list[dict[str, Any]])
    assert_type(await grouped.acount(), int)
    assert_type(await grace.adelete(), bool)
    await User.objects.adispose()


def main() -> None:
    try:
        check_sync()
        asyncio.run(check_async())
    finally:
        for model in (User, Post, Tag, PostTag):
            model.drop_schema()


if __name__ == "__main__":
    main()
