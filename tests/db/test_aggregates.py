"""Issue 16 (SPEC D14), aggregates and grouping: ``aggregate()``, ``values().annotate()``.

Every test runs on each backend (``database_url``) and checks the sync call against its
async twin: one implementation, one result, one type.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from typing import Any, TypeVar

import pytest
from pydantic import BaseModel

from registers.db import (
    Avg,
    BelongsTo,
    Count,
    HasMany,
    HasManyThrough,
    InvalidQueryError,
    Max,
    Min,
    Q,
    Sum,
    aio,
    database_registry,
)

from ._helpers import count_statements_on

T = TypeVar("T")


def twin(sync: T, make: Callable[[], Awaitable[T]]) -> T:
    """``sync`` equals what the async twin returns (same value, same types)."""
    got = asyncio.run(_run(make))
    assert got == sync
    assert _types(got) == _types(sync)
    return sync


async def _run(make: Callable[[], Awaitable[T]]) -> T:
    try:
        return await make()
    finally:
        await aio.adispose_all()


def _types(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: type(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_types(v) for v in value]
    return type(value)


class Shop:
    """Authors (users of a blog shop), their posts and the posts' tags."""

    def __init__(self, url: str, indexed: bool = False) -> None:
        # indexed links: the to-many aggregates are correlated subqueries; else derived tables
        links: dict[str, Any] = {"indexes": ["user_id"]} if indexed else {}
        through: dict[str, Any] = {"unique_fields": [("post_id", "tag_id")]} if indexed else {}

        @database_registry(url, table_name="agg_users")
        class User(BaseModel):
            id: int | None = None
            name: str
            role: str | None = None
            score: int | None = None
            weight: float = 0.0
            balance: Decimal = Decimal("0")
            active: bool = True
            born: date | None = None
            seen: datetime | None = None
            opens: time | None = None
            data: dict[str, Any] = {}

        @database_registry(url, table_name="agg_posts", **links)
        class Post(BaseModel):
            id: int | None = None
            user_id: int | None = None
            title: str
            likes: int = 0
            price: Decimal | None = None

        @database_registry(url, table_name="agg_tags")
        class Tag(BaseModel):
            id: int | None = None
            name: str

        @database_registry(url, table_name="agg_post_tags", **through)
        class PostTag(BaseModel):
            id: int | None = None
            post_id: int
            tag_id: int

        User.posts = HasMany(Post, foreign_key="user_id")  # type: ignore[attr-defined]
        Post.user = BelongsTo(User, local_key="user_id")  # type: ignore[attr-defined]
        Post.tags = HasManyThrough(Tag, through=PostTag, source_key="post_id",  # type: ignore[attr-defined]
                                   target_key="tag_id")
        self.User, self.Post, self.Tag, self.PostTag = User, Post, Tag, PostTag
        for model in (PostTag, Tag, Post, User):
            model.objects.truncate()

    def seed(self) -> None:
        User, Post, Tag, PostTag = self.User, self.Post, self.Tag, self.PostTag
        utc = timezone.utc
        users = User.objects.bulk_create([
            dict(name="ada", role="admin", score=10, weight=1.5, balance=Decimal("0.10"),
                 born=date(1815, 12, 10), seen=datetime(2024, 1, 2, 3, 4, 5, tzinfo=utc),
                 opens=time(9, 30)),
            dict(name="bob", role="member", score=3, weight=2.25, balance=Decimal("0.20"),
                 active=False, born=date(1990, 1, 1),
                 seen=datetime(2024, 6, 1, 12, 0, tzinfo=timezone(timedelta(hours=2)))),
            dict(name="cy", role="member", score=None, weight=0.25, balance=Decimal("0.30")),
            dict(name="dee", role=None, score=7, weight=4.0, balance=Decimal("0.40"),
                 opens=time(8, 0)),
            dict(name="eve", role=None, score=None, weight=0.0, balance=Decimal("0.50")),
        ])
        ada, bob = users[0], users[1]
        posts = Post.objects.bulk_create([
            dict(user_id=ada.id, title="a1", likes=5, price=Decimal("1.10")),
            dict(user_id=ada.id, title="a2", likes=7, price=Decimal("2.20")),
            dict(user_id=ada.id, title="a3", likes=0, price=None),
            dict(user_id=bob.id, title="b1", likes=1, price=Decimal("3.30")),
            dict(user_id=None, title="orphan", likes=100, price=Decimal("9.99")),
        ])
        tags = Tag.objects.bulk_create([dict(name="x"), dict(name="y")])
        PostTag.objects.bulk_create([
            dict(post_id=posts[0].id, tag_id=tags[0].id),
            dict(post_id=posts[0].id, tag_id=tags[1].id),
            dict(post_id=posts[1].id, tag_id=tags[0].id),
            dict(post_id=posts[3].id, tag_id=tags[0].id),
        ])


@pytest.fixture
def shop(database_url: str) -> Shop:
    return Shop(database_url)


@pytest.fixture
def seeded(shop: Shop) -> Shop:
    shop.seed()
    return shop


@pytest.fixture(params=[False, True], ids=["derived", "correlated"])
def related(database_url: str, request: pytest.FixtureRequest) -> Shop:
    """Seeded, with the links of the to-many relations unindexed and indexed."""
    shop = Shop(database_url, indexed=request.param)
    shop.seed()
    return shop


# --- aggregate() -------------------------------------------------------------------------

@pytest.mark.parametrize("indexed", [False, True], ids=["derived", "correlated"])
def test_aggregate_of_an_empty_table_is_zero_and_none(database_url: str, indexed: bool) -> None:
    User = Shop(database_url, indexed=indexed).User
    aggs = dict(n=Count("id"), total=Sum("score"), mean=Avg("score"), low=Min("name"),
                high=Max("born"), money=Sum("balance"), posts=Count("posts"),
                likes=Sum("posts__likes"))
    got = twin(User.objects.aggregate(**aggs), lambda: User.objects.aaggregate(**aggs))
    assert got == dict(n=0, total=None, mean=None, low=None, high=None, money=None, posts=0,
                       likes=None)


def test_aggregate_types_follow_the_field(seeded: Shop) -> None:
    User = seeded.User
    aggs = dict(n=Count("id"), total=Sum("score"), mean=Avg("score"), weight=Sum("weight"),
                wmean=Avg("weight"), money=Sum("balance"), mmean=Avg("balance"),
                first=Min("name"), last=Max("name"), oldest=Min("born"), seen=Max("seen"),
                opens=Min("opens"))
    got = twin(User.objects.aggregate(**aggs), lambda: User.objects.aaggregate(**aggs))
    assert got["n"] == 5 and type(got["n"]) is int
    assert got["total"] == 20 and type(got["total"]) is int  # NULL scores are skipped
    assert got["mean"] == pytest.approx(20 / 3) and type(got["mean"]) is float
    assert got["weight"] == 8.0 and type(got["weight"]) is float
    assert got["wmean"] == 1.6
    assert got["money"] == Decimal("1.50") and type(got["money"]) is Decimal
    assert got["mmean"] == Decimal("0.3") and type(got["mmean"]) is Decimal
    assert (got["first"], got["last"]) == ("ada", "eve")
    assert got["oldest"] == date(1815, 12, 10)
    assert got["seen"] == datetime(2024, 6, 1, 10, 0, tzinfo=timezone.utc)
    assert got["seen"].tzinfo is not None  # aware, decoded by the column codec
    assert got["opens"] == time(8, 0)


def test_aggregate_of_a_filtered_query_and_positional_names(seeded: Shop) -> None:
    User = seeded.User
    query = User.objects.where(active=True)
    got = twin(query.aggregate(Count("id"), Sum("score"), top=Max("score")),
               lambda: query.aaggregate(Count("id"), Sum("score"), top=Max("score")))
    assert got == {"id__count": 4, "score__sum": 17, "top": 10}
    assert User.objects.where(name="nobody").aggregate(n=Count("id"), s=Sum("score")) == {
        "n": 0, "s": None}


def test_nulls_inside_aggregates(seeded: Shop) -> None:
    User = seeded.User
    got = User.objects.where(score=None).aggregate(
        rows=Count("id"), scores=Count("score"), total=Sum("score"), mean=Avg("score"),
        low=Min("score"), roles=Count("role"))
    assert got == {"rows": 2, "scores": 0, "total": None, "mean": None, "low": None,
                   "roles": 1}


def test_distinct_aggregates(seeded: Shop) -> None:
    User = seeded.User
    User.objects.create(name="fay", role="admin", score=10, balance=Decimal("0.1"))
    got = twin(User.objects.aggregate(roles=Count("role", distinct=True),
                                      scores=Sum("score", distinct=True),
                                      mean=Avg("score", distinct=True),
                                      money=Count("balance", distinct=True)),
               lambda: User.objects.aaggregate(roles=Count("role", distinct=True),
                                               scores=Sum("score", distinct=True),
                                               mean=Avg("score", distinct=True),
                                               money=Count("balance", distinct=True)))
    # 0.1 and 0.10 are one value on every backend (SQLite keeps the text of each)
    assert got == {"roles": 2, "scores": 20, "mean": 20 / 3, "money": 5}


def test_decimal_sums_are_exact_on_every_backend(shop: Shop) -> None:
    User = shop.User
    User.objects.bulk_create([dict(name=f"u{i}", balance=Decimal("0.1")) for i in range(10)])
    User.objects.create(name="big", balance=Decimal("12345678901234567890.123456789"))
    got = twin(User.objects.aggregate(total=Sum("balance"), mean=Avg("balance"),
                                      low=Min("balance"), high=Max("balance")),
               lambda: User.objects.aaggregate(total=Sum("balance"), mean=Avg("balance"),
                                               low=Min("balance"), high=Max("balance")))
    assert got["total"] == Decimal("12345678901234567891.123456789")  # not a float's 1.0000001
    assert got["mean"] == Decimal("12345678901234567891.123456789") / 11
    assert got["low"] == Decimal("0.1") and got["high"] == Decimal("12345678901234567890.123456789")
    small = User.objects.where(name__startswith="u").aggregate(total=Sum("balance"))
    assert small["total"] == Decimal("1.0") and str(small["total"]).rstrip("0") == "1."


def test_decimal_min_and_max_compare_numbers_not_text(shop: Shop) -> None:
    User = shop.User
    User.objects.bulk_create([dict(name="a", balance=Decimal("9.5")),
                              dict(name="b", balance=Decimal("10.25")),
                              dict(name="c", balance=Decimal("-2"))])
    assert User.objects.aggregate(low=Min("balance"), high=Max("balance")) == {
        "low": Decimal("-2"), "high": Decimal("10.25")}


def test_manager_shortcuts(seeded: Shop) -> None:
    User = seeded.User
    assert User.objects.aggregate(n=Count("id")) == {"n": 5}
    assert twin(User.objects.aggregate(n=Count("id")),
                lambda: User.objects.aaggregate(n=Count("id"))) == {"n": 5}
    assert User.objects.values("role").annotate(n=Count("id")).count() == 3
    assert User.objects.values_list("role").annotate(n=Count("id")).all() == [
        (None, 2), ("admin", 1), ("member", 2)]


def test_aggregate_is_one_statement(seeded: Shop, database_url: str) -> None:
    User = seeded.User
    with count_statements_on(database_url) as log:
        User.objects.where(active=True).aggregate(n=Count("id"), p=Count("posts"),
                                                  s=Sum("posts__likes"), m=Avg("score"))
        User.objects.values("role").annotate(n=Count("id")).where(n__gt=1).all()
    assert len(log) == 2


# --- grouping ------------------------------------------------------------------------------

def test_group_by_a_nullable_field(seeded: Shop) -> None:
    User = seeded.User
    query = User.objects.values("role").annotate(n=Count("id"), total=Sum("score"),
                                                 mean=Avg("score"), top=Max("name"))
    got = twin(query.all(), query.aall)
    assert got == [
        {"role": None, "n": 2, "total": 7, "mean": 7.0, "top": "eve"},  # NULLs first
        {"role": "admin", "n": 1, "total": 10, "mean": 10.0, "top": "ada"},
        {"role": "member", "n": 2, "total": 3, "mean": 3.0, "top": "cy"},
    ]
    assert [g["role"] for g in query.order_by("-role")] == ["member", "admin", None]


async def _collect(query: Any) -> list[Any]:
    return [row async for row in query]


def test_order_by_annotations_with_ties(seeded: Shop) -> None:
    User = seeded.User
    query = User.objects.values("role").annotate(n=Count("id")).order_by("-n")
    got = twin(query.all(), lambda: _collect(query))
    # member and NULL both have 2: the values() fields break the tie, NULL first
    assert [(g["role"], g["n"]) for g in got] == [(None, 2), ("member", 2), ("admin", 1)]
    assert [g["role"] for g in query.order_by("n")] == ["admin", None, "member"]
    assert query.first() == {"role": None, "n": 2}
    assert query.last() == {"role": "admin", "n": 1}
    assert query[1:].all() == [{"role": "member", "n": 2}, {"role": "admin", "n": 1}]
    assert query[2] == {"role": "admin", "n": 1}
    total = User.objects.values("role").annotate(total=Sum("score")).order_by("-total")
    # a NULL sum (no scores in the group) sorts last descending, first ascending
    User.objects.create(name="zed", role="guest")
    assert [g["role"] for g in total] == ["admin", None, "member", "guest"]
    assert [g["role"] for g in total.order_by("total")] == ["guest", "member", None, "admin"]


def test_where_on_annotations_is_having(seeded: Shop) -> None:
    User = seeded.User
    groups = User.objects.values("role").annotate(n=Count("id"), total=Sum("score"))

    def roles(query: Any) -> list[Any]:
        return [g["role"] for g in twin(query.all(), query.aall)]

    assert roles(groups.where(n__gt=1)) == [None, "member"]
    assert roles(groups.where(n=1)) == ["admin"]
    assert roles(groups.where(Q(n__gte=2) & Q(total__lt=5))) == ["member"]
    assert roles(groups.where(Q(total__gt=8) | Q(total__lt=4))) == ["admin", "member"]
    assert roles(groups.exclude(total__lt=5)) == [None, "admin"]
    assert roles(groups.where(total__in=[7, 10])) == [None, "admin"]
    assert roles(groups.where(total__between=(3, 7))) == [None, "member"]
    assert roles(groups.where(total__isnull=True)) == []
    # a where() on fields after annotate() still filters the rows, before grouping
    assert groups.where(active=True).where(n=2).all() == [
        {"role": None, "n": 2, "total": 7}]
    assert groups.where(n__gt=1).count() == 2 and groups.where(n__gt=5).exists() is False
    assert groups.where(n__gt=1).get(total=3) == {"role": "member", "n": 2, "total": 3}


def test_group_by_several_fields_and_a_relation_path(seeded: Shop) -> None:
    User, Post = seeded.User, seeded.Post
    pairs = User.objects.values("role", "active").annotate(n=Count("id")).all()
    assert pairs == [{"role": None, "active": True, "n": 2},
                     {"role": "admin", "active": True, "n": 1},
                     {"role": "member", "active": False, "n": 1},
                     {"role": "member", "active": True, "n": 1}]
    query = Post.objects.values("user__name").annotate(n=Count("id"), total=Sum("likes"))
    assert twin(query.all(), query.aall) == [
        {"user__name": None, "n": 1, "total": 100},
        {"user__name": "ada", "n": 3, "total": 12},
        {"user__name": "bob", "n": 1, "total": 1},
    ]
    money = Post.objects.values("user__role").annotate(total=Sum("price"), avg=Avg("price"))
    assert money.all() == [
        {"user__role": None, "total": Decimal("9.99"), "avg": Decimal("9.99")},
        {"user__role": "admin", "total": Decimal("3.30"), "avg": Decimal("1.65")},
        {"user__role": "member", "total": Decimal("3.30"), "avg": Decimal("3.30")},
    ]


def test_aggregates_across_a_to_many_relation(related: Shop) -> None:
    User = related.User
    query = User.objects.values("name").annotate(posts=Count("posts"), likes=Sum("posts__likes"),
                                                 own=Sum("score"), best=Max("posts__likes"),
                                                 price=Avg("posts__price"))
    got = twin(query.all(), query.aall)
    assert got == [
        {"name": "ada", "posts": 3, "likes": 12, "own": 10, "best": 7,
         "price": Decimal("1.65")},
        {"name": "bob", "posts": 1, "likes": 1, "own": 3, "best": 1, "price": Decimal("3.3")},
        {"name": "cy", "posts": 0, "likes": None, "own": None, "best": None, "price": None},
        {"name": "dee", "posts": 0, "likes": None, "own": 7, "best": None, "price": None},
        {"name": "eve", "posts": 0, "likes": None, "own": None, "best": None, "price": None},
    ]
    # Sum("score") is not multiplied by ada's three posts (Django's single join would give 30)
    assert User.objects.aggregate(score=Sum("score"), posts=Count("posts")) == {
        "score": 20, "posts": 4}
    by_role = User.objects.values("role").annotate(posts=Count("posts", distinct=True),
                                                   users=Count("id"))
    assert by_role.order_by("-posts").all() == [
        {"role": "admin", "posts": 3, "users": 1},
        {"role": "member", "posts": 1, "users": 2},
        {"role": None, "posts": 0, "users": 2},
    ]
    assert [g["name"] for g in query.where(posts=0)] == ["cy", "dee", "eve"]


def test_aggregates_across_a_many_to_many_relation(related: Shop) -> None:
    Post = related.Post
    query = Post.objects.values("title").annotate(tags=Count("tags"), first=Min("tags__name"))
    assert query.order_by("-tags").all() == [
        {"title": "a1", "tags": 2, "first": "x"},
        {"title": "a2", "tags": 1, "first": "x"},
        {"title": "b1", "tags": 1, "first": "x"},
        {"title": "a3", "tags": 0, "first": None},
        {"title": "orphan", "tags": 0, "first": None},
    ]
    assert Post.objects.aggregate(tags=Count("tags"), likes=Sum("likes")) == {
        "tags": 4, "likes": 113}


def test_values_of_every_field_annotates_each_row(related: Shop) -> None:
    Post = related.Post
    rows = Post.objects.where(likes__gt=0).values().annotate(tags=Count("tags")).all()
    assert [(r["title"], r["tags"]) for r in rows] == [("a1", 2), ("a2", 1), ("b1", 1),
                                                        ("orphan", 0)]
    assert rows[0]["price"] == Decimal("1.10")


def test_iterate_and_count_a_grouped_query(related: Shop) -> None:
    User = related.User
    query = User.objects.values("name").annotate(posts=Count("posts")).order_by("-posts")
    assert [g["name"] for g in query.iterate(batch_size=2)] == ["ada", "bob", "cy", "dee", "eve"]
    assert query.count() == 5 and query[1:3].count() == 2 and query[4:].exists()
    assert not query[5:].exists()


def test_unicode_and_empty_text_groups(shop: Shop) -> None:
    User = shop.User
    User.objects.bulk_create([dict(name="x", role=r) for r in ["é", "é", "", "Z", "z", ""]])
    got = User.objects.values("role").annotate(n=Count("id")).all()
    assert got == [{"role": "", "n": 2}, {"role": "Z", "n": 1}, {"role": "z", "n": 1},
                   {"role": "é", "n": 2}]  # code point order, case kept apart
    assert User.objects.aggregate(low=Min("role"), high=Max("role")) == {"low": "", "high": "é"}


def test_having_on_min_of_text_and_dates(seeded: Shop) -> None:
    User = seeded.User
    groups = User.objects.values("role").annotate(first=Min("name"), latest=Max("born"))
    assert [g["role"] for g in groups.where(first__startswith="a")] == ["admin"]
    assert [g["role"] for g in groups.where(latest__gte=date(1900, 1, 1))] == ["member"]
    assert [g["role"] for g in groups.where(latest=None)] == [None]


# --- bad input: one line, before any SQL ------------------------------------------------------

BAD_AGGREGATES: list[tuple[Callable[[Any], Any], str]] = [
    (lambda U: U.objects.aggregate(Sum("nope")), "Sum('nope'): "),
    (lambda U: U.objects.aggregate(s=Sum("name")), "User.name is a str field; Sum needs"),
    (lambda U: U.objects.aggregate(s=Avg("active")), "User.active is a bool field"),
    (lambda U: U.objects.aggregate(s=Max("data")), "User.data is a json field; Max needs"),
    (lambda U: U.objects.aggregate(s=Sum("posts__title")), "Post.title is a str field"),
    (lambda U: U.objects.aggregate(s=Sum("posts__nope")), "Post has no field 'nope'"),
    (lambda U: U.objects.aggregate(s=Sum("posts__user__score")), "not a path beyond it"),
    (lambda U: U.objects.aggregate(s=Count("posts__likes", distinct=True)), "distinct=True"),
    (lambda U: U.objects.aggregate(s=Sum("name__x")), "is a field, not a relationship"),
    (lambda U: U.objects.aggregate(), "aggregate() needs at least one aggregate"),
    (lambda U: U.objects.aggregate("id"), "aggregate() takes aggregates"),
    (lambda U: U.objects.aggregate(Count("id"), id__count=Sum("score")), "names 'id__count' twice"),
    (lambda U: U.objects.aggregate(n="id"), "aggregate(n=...) takes an aggregate"),
    (lambda U: U.objects.where()[:2].aggregate(n=Count("id")), "after a slice"),
    (lambda U: U.objects.where().distinct().aggregate(n=Count("id")), "distinct()"),
    (lambda U: U.objects.where().annotate(n=Count("id")), "needs values(...)"),
    (lambda U: U.objects.values_list("role", flat=True).annotate(n=Count("id")),
     "needs values(...)"),
    (lambda U: U.objects.values("role").annotate(name=Count("id")), "clashes with a field"),
    (lambda U: U.objects.values("role").annotate(n=Count("id")).annotate(n=Sum("score")),
     "names 'n' twice"),
    (lambda U: U.objects.values("role").annotate(n=Count("id")).values("name"),
     "values() after annotate()"),
    (lambda U: U.objects.values("role").annotate(n=Count("id")).aggregate(m=Max("id")),
     "aggregate() on an annotated"),
    (lambda U: U.objects.values("role").annotate(n=Count("id")).order_by("name").all(),
     "order_by 'name' on a grouped User query"),
    (lambda U: U.objects.values("role").annotate(n=Count("id")).where(n=1, role="x"),
     "not both"),
    (lambda U: U.objects.values("role").annotate(n=Count("id")).where(n__gt="many").all(),
     "n__gt takes a number"),
    (lambda U: U.objects.values("role").annotate(n=Count("id")).where(n=True).all(),
     "takes a number, got True"),
    (lambda U: U.objects.values("role").annotate(n=Count("id")).where(n__foo=1).all(),
     "unknown lookup"),
    (lambda U: U.objects.values("role").annotate(n=Min("born")).where(n__gt="x").all(),
     "takes a date value"),
    (lambda U: U.objects.values("role").annotate(n=Count("id")).update(role="x"),
     "cannot update a grouped"),
    (lambda U: U.objects.values("role").annotate(n=Count("id")).delete(),
     "cannot delete a grouped"),
    (lambda U: U.objects.values("role").annotate(n=Count("id"))[:1].where(n=1),
     "once a slice"),
    (lambda U: Min("score", distinct=True), "Min() does not take distinct=True"),
    (lambda U: Count(""), "Count() takes a field name"),
    (lambda U: Sum("score", distinct=1), "takes True or False"),
]


@pytest.mark.parametrize(("call", "message"), BAD_AGGREGATES,
                         ids=[m for _, m in BAD_AGGREGATES])
def test_bad_input_is_one_line_before_any_sql(shop: Shop, database_url: str,
                                              call: Callable[[Any], Any],
                                              message: str) -> None:
    with count_statements_on(database_url) as log, pytest.raises(InvalidQueryError) as caught:
        call(shop.User)
    text = str(caught.value)
    assert message in text and "\n" not in text
    assert log == []


def test_async_bad_input_raises_too(shop: Shop) -> None:
    User = shop.User
    with pytest.raises(InvalidQueryError, match="Sum needs"):
        asyncio.run(_run(lambda: User.objects.aaggregate(s=Sum("name"))))


# --- scale, concurrency, limits ------------------------------------------------------------

def test_many_groups_and_a_long_in_list_on_an_annotation(shop: Shop) -> None:
    User = shop.User
    User.objects.bulk_create([dict(name=f"n{i % 3000:04d}", score=i) for i in range(6000)])
    groups = User.objects.values("name").annotate(n=Count("id"), total=Sum("score"))
    assert groups.count() == 3000
    # the group n{k} holds the scores k and k + 3000: its total is 3000 + 2 k
    wanted = list(range(3000, 9000, 4))  # every other group's total: 1,500 values,
    wanted += [-v for v in range(1, 4501)]  # and 4,500 matching none: past the long-IN bound
    matched = groups.where(total__in=wanted)
    assert matched.count() == 1500
    assert groups.exclude(total__in=wanted).count() == 1500
    assert matched.order_by("total").first() == {"name": "n0000", "n": 2, "total": 3000}
    streamed = list(groups.order_by("-total").iterate(batch_size=700))
    assert len(streamed) == 3000 and streamed[0] == {"name": "n2999", "n": 2, "total": 8998}
    assert [g["total"] for g in streamed] == sorted((g["total"] for g in streamed), reverse=True)


def test_aggregates_while_other_threads_write(shop: Shop) -> None:
    import threading

    User = shop.User
    errors: list[BaseException] = []

    def work(number: int) -> None:
        try:
            for i in range(20):
                User.objects.create(name=f"t{number}-{i}", role=f"r{number}", score=1)
                got = User.objects.where(role=f"r{number}").aggregate(n=Count("id"),
                                                                      s=Sum("score"))
                assert got == {"n": i + 1, "s": i + 1}
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert User.objects.values("role").annotate(n=Count("id")).where(n=20).count() == 8


def test_an_int_sum_past_64_bits(shop: Shop, backend: str) -> None:
    """The servers sum integers exactly past 64 bits; SQLite refuses (its SUM raises
    "integer overflow"): never a wrapped or rounded number."""
    from registers.db import RegistryError

    User = shop.User
    User.objects.bulk_create([dict(name=f"b{i}", score=2**62) for i in range(3)])
    if backend == "sqlite":
        with pytest.raises(RegistryError, match="integer overflow"):
            User.objects.aggregate(total=Sum("score"))
        return
    assert User.objects.aggregate(total=Sum("score"), mean=Avg("score")) == {
        "total": 3 * 2**62, "mean": float(2**62)}


def test_having_on_decimal_and_mean_annotations(seeded: Shop) -> None:
    User = seeded.User
    groups = User.objects.values("role").annotate(money=Sum("balance"), stars=Avg("score"),
                                                  wmean=Avg("weight"))

    def roles(query: Any) -> list[Any]:
        return [g["role"] for g in twin(query.all(), query.aall)]

    # money: NULL role 0.90, admin 0.10, member 0.50 (0.20 + 0.30)
    assert roles(groups.where(money__gt=Decimal("0.45"))) == [None, "member"]
    assert roles(groups.where(money=Decimal("0.5"))) == ["member"]  # 0.50 == 0.5
    assert roles(groups.where(money__lte="0.10")) == ["admin"]  # validated as a Decimal
    assert roles(groups.where(stars__gt=5)) == [None, "admin"]  # 7.0 and 10.0
    assert roles(groups.where(wmean__lt=1.5)) == ["member"]  # (2.25 + 0.25) / 2 = 1.25
    assert roles(groups.order_by("-money")) == [None, "member", "admin"]
    with pytest.raises(InvalidQueryError, match="money__gt takes a number"):
        groups.where(money__gt="lots").all()


@pytest.mark.parametrize("indexed", [False, True])
def test_an_indexed_link_is_probed_per_row(database_url: str, indexed: bool) -> None:
    """With the link indexed, a filtered query reads only its own rows' children (a
    correlated subquery per row); without, every child once (one derived table)."""
    shop = Shop(database_url, indexed=indexed)
    shop.seed()
    User = shop.User
    with count_statements_on(database_url) as log:
        got = User.objects.where(name="ada").aggregate(posts=Count("posts"),
                                                       likes=Sum("posts__likes"))
    assert got == {"posts": 3, "likes": 12}
    (sql,) = log
    assert ("LEFT JOIN (SELECT" in sql) is not indexed
