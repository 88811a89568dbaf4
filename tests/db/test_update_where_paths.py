"""update_where on MySQL/MariaDB, which has no ``UPDATE ... RETURNING``: its two paths.

* Constant values on fields the WHERE does not read, the WHERE on the model's own columns:
  ``UPDATE ... WHERE w`` then ``SELECT ... WHERE w`` (BEGIN, UPDATE, SELECT, COMMIT). When
  the re-read finds more rows than the UPDATE matched (another transaction's rows, visible
  under READ COMMITTED or from an older REPEATABLE READ snapshot), the same transaction
  goes on with the locking path below.
* Otherwise (an ``F`` expression, a WHERE reading a field being set, auto_now included, a
  relation lookup): lock the matching keys, update and re-read them by key (BEGIN,
  SELECT ... FOR UPDATE, UPDATE, SELECT, COMMIT).

Every test runs on the three backends; the path assertions apply to MySQL, while SQLite
and PostgreSQL must return the same rows through ``UPDATE ... RETURNING``.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import functools
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from registers.db import BelongsTo, F, Q, aio, database_registry, db_field, get_engine
from registers.db.criteria import Expression
from registers.db.flows import drive
from registers.db.statements import IN_CHUNK

from .test_differential import CODES, LABELS, _match

FIELDS = ("code", "n", "m", "label")


def _model(url: str) -> Any:
    @database_registry(url, table_name="uw_items")
    class Item(BaseModel):
        id: int | None = None
        code: str = ""
        n: int = 0
        m: int = 0
        label: str | None = None

    return Item


def _plain(rows: Any) -> list[tuple[Any, ...]]:
    return [(r.id, *(getattr(r, f) for f in FIELDS)) for r in rows]


# --- which statements a call sends ---------------------------------------------------------

class Log(list[str]):
    """Statements on the table, sync or async (SQLAlchemy's statement events)."""

    def path(self) -> str:
        """``reselect``: UPDATE then SELECT by the WHERE; ``locked``: SELECT ... FOR UPDATE
        first; ``fallback``: the first, then the second; ``returning``: one
        UPDATE ... RETURNING."""
        kinds = [s.split(None, 1)[0].upper() + (" FOR UPDATE" if "FOR UPDATE" in s else "")
                 for s in self]
        if kinds == ["UPDATE"] and " RETURNING " in self[0]:
            return "returning"
        if kinds[:1] == ["SELECT FOR UPDATE"]:
            return "locked"
        if kinds[:2] == ["UPDATE", "SELECT"]:
            return "fallback" if kinds[2:3] == ["SELECT FOR UPDATE"] else "reselect"
        raise AssertionError(f"unexpected statements: {list(self)}")


@contextmanager
def _logged(url: str, table: str = "uw_items") -> Iterator[Log]:
    """Statements of the sync engine, and of the async one inside a running event loop."""
    log = Log()

    def on_execute(conn: Any, cursor: Any, statement: str, *rest: Any) -> None:
        if table in statement and "SAVEPOINT" not in statement:
            log.append(statement)

    engines = [get_engine(url)]
    with contextlib.suppress(RuntimeError):  # no running loop: sync calls only
        asyncio.get_running_loop()
        engines.append(aio.get_async_engine(url).sync_engine)
    for engine in engines:
        sa.event.listen(engine, "before_cursor_execute", on_execute)
    try:
        yield log
    finally:
        for engine in engines:
            sa.event.remove(engine, "before_cursor_execute", on_execute)


def _questions(conn: Any) -> int:
    cursor = conn.cursor()
    cursor.execute("SHOW SESSION STATUS LIKE 'Questions'")
    return int(cursor.fetchall()[0][1])


def _expected_path(backend: str, fast: bool) -> str:
    if backend != "mysql":
        return "returning"
    return "reselect" if fast else "locked"


# --- which path each kind of call takes ------------------------------------------------

FUTURE = dt.datetime(2100, 1, 1, tzinfo=dt.timezone.utc)

# (criteria, updates, fast): fast is the expected MySQL path (True: UPDATE + SELECT)
CASES: dict[str, tuple[Any, dict[str, Any], bool]] = {
    "constant on another field": ({"n": 1}, {"label": "x"}, True),
    "NULL on another field": ({"n": 1}, {"label": None}, True),
    "several constants": ({"m__gte": 0}, {"label": "y", "code": "c"}, True),
    "Q with OR and NOT over own fields": (Q(n=1) | ~Q(m__gt=3), {"label": "z"}, True),
    "isnull": ({"label__isnull": True}, {"code": "was null"}, True),
    "zero matches": ({"n": 999}, {"label": "none"}, True),
    "the value rows already hold": ({"n": 2}, {"label": "b"}, True),
    "WHERE reads the field set": ({"n": 1}, {"n": 5}, False),
    "WHERE reads it inside an OR": (Q(m=9) | Q(n__in=[1, 2]), {"n": 7}, False),
    "WHERE reads it under a NOT": (~Q(label="b"), {"label": "c"}, False),
    "F expression": ({"n": 1}, {"m": F("m") + 1}, False),
    "F expression beside a constant": ({"n": 2}, {"label": "q", "m": F("n") * 2}, False),
}

SEED = [{"code": "a", "n": 1, "m": 0, "label": None},
        {"code": "b", "n": 2, "m": 5, "label": "b"},
        {"code": "c", "n": 1, "m": 4, "label": "x"},
        {"code": "d", "n": 3, "m": 1, "label": None}]


def _seed_rows(Item: Any) -> list[Any]:
    return Item.objects.bulk_create([dict(r) for r in SEED])


def _reference(rows: list[Any], criteria: Any, updates: dict[str, Any]) -> list[tuple[Any, ...]]:
    """The rows update_where must return, computed in Python from the seeded rows."""
    result = []
    for row in rows:
        values = row.model_dump()
        if not _q_matches(values, criteria):
            continue
        new = dict(values)
        for name, value in updates.items():
            new[name] = _eval_f(value, values) if isinstance(value, Expression) else value
        result.append((new["id"], *(new[f] for f in FIELDS)))
    return result


def _eval_f(expr: Any, row: dict[str, Any]) -> Any:
    if isinstance(expr, F):
        return row[expr.name]
    if not isinstance(expr, Expression):
        return expr
    left, op, right = expr.parts
    a, b = _eval_f(left, row), _eval_f(right, row)
    return {"+": a + b, "-": a - b, "*": a * b}[op]


def _q_matches(row: dict[str, Any], criteria: Any) -> bool:
    if isinstance(criteria, dict):
        criteria = Q(**criteria)
    results = []
    for child in criteria.children:
        if isinstance(child, Q):
            results.append(_q_matches(row, child))
        else:
            key, value = child
            name, _, lookup = key.partition("__")
            results.append(_match(row[name], lookup or "eq", value))
    found = all(results) if criteria.connector == "AND" else any(results)
    return not found if criteria.negated else found


@pytest.mark.parametrize("case", list(CASES))
def test_each_kind_of_call_takes_its_path_and_returns_the_updated_rows(
        database_url: str, backend: str, case: str) -> None:
    criteria, updates, fast = CASES[case]
    Item = _model(database_url)
    seeded = _seed_rows(Item)
    expected = _reference(seeded, criteria, updates)
    Item.objects.update_where({"n": 999}, label="warm")  # connection and table ready
    if backend == "mysql":
        conn = Item.objects.database.autocommit_connection()
        before = _questions(conn)
    with _logged(database_url) as log:
        got = Item.objects.update_where(criteria, **updates)
    assert _plain(got) == expected
    assert log.path() == _expected_path(backend, fast)
    if backend == "mysql":  # BEGIN, the statements, COMMIT (the second SHOW counts itself)
        trips = 2 + (2 if fast else (3 if expected else 1))
        assert _questions(conn) - before - 1 == trips
    unchanged = [r for r in _plain(seeded) if r[0] not in {e[0] for e in expected}]
    assert _plain(Item.objects.all()) == sorted(expected + unchanged)


@pytest.mark.parametrize("case", list(CASES))
async def test_each_kind_of_async_call_takes_the_same_path(
        database_url: str, backend: str, case: str) -> None:
    criteria, updates, fast = CASES[case]
    Item = _model(database_url)
    seeded = _seed_rows(Item)
    try:
        with _logged(database_url) as log:
            got = await Item.objects.aupdate_where(criteria, **updates)
        assert _plain(got) == _reference(seeded, criteria, updates)
        assert log.path() == _expected_path(backend, fast)
    finally:
        await aio.adispose_all()


@pytest.fixture
def Stamped(database_url: str) -> Any:
    @database_registry(database_url, table_name="uw_docs")
    class Doc(BaseModel):
        id: int | None = None
        slug: str
        body: str = ""
        updated_at: dt.datetime = db_field(auto_now=True)

    return Doc


def test_an_auto_now_field_in_the_where_takes_the_locking_path(
        database_url: str, backend: str, Stamped: Any) -> None:
    Stamped.objects.bulk_create([{"slug": "a"}, {"slug": "b"}])
    with _logged(database_url, "uw_docs") as log:
        got = Stamped.objects.update_where({"updated_at__lt": FUTURE}, body="new")
    assert [(d.slug, d.body) for d in got] == [("a", "new"), ("b", "new")]
    assert log.path() == _expected_path(backend, fast=False)
    with _logged(database_url, "uw_docs") as log:
        got = Stamped.objects.update_where({"slug": "a"}, body="again")
    assert [(d.slug, d.body) for d in got] == [("a", "again")]
    assert log.path() == _expected_path(backend, fast=True)  # auto_now is not in the WHERE
    assert got[0].updated_at == Stamped.objects.require(slug="a").updated_at


def test_a_relation_lookup_in_the_where_takes_the_locking_path(
        database_url: str, backend: str) -> None:
    @database_registry(database_url, table_name="uw_owners")
    class Owner(BaseModel):
        id: int | None = None
        name: str


    @database_registry(database_url, table_name="uw_pets")
    class Pet(BaseModel):
        id: int | None = None
        owner_id: int | None = None
        label: str = ""

    Pet.owner = BelongsTo(Owner, local_key="owner_id")  # type: ignore[attr-defined]
    ada, bob = Owner.objects.bulk_create([{"name": "Ada"}, {"name": "Bob"}])
    Pet.objects.bulk_create([{"owner_id": ada.id}, {"owner_id": bob.id}, {"owner_id": ada.id}])
    with _logged(database_url, "uw_pets") as log:
        got = Pet.objects.update_where({"owner__name": "Ada"}, label="ada's")
    assert [(p.id, p.label) for p in got] == [(1, "ada's"), (3, "ada's")]
    assert log.path() == _expected_path(backend, fast=False)
    with _logged(database_url, "uw_pets") as log:
        got = Pet.objects.update_where(Q(owner_id=bob.id) | Q(owner__name="Nobody"), label="b")
    assert [(p.id, p.label) for p in got] == [(2, "b")]
    assert log.path() == _expected_path(backend, fast=False)


# --- the same rows on every backend, whatever the criteria -----------------------------

small = st.integers(-3, 3)
leaf = st.one_of(
    st.tuples(st.sampled_from(["n", "n__ne", "n__lt", "n__gte", "m", "m__gt", "m__lte"]), small),
    st.tuples(st.sampled_from(["n__in", "m__not_in"]), st.lists(small, max_size=3)),
    st.tuples(st.sampled_from(["code", "code__ne", "code__gt"]), st.sampled_from(CODES)),
    st.tuples(st.sampled_from(["label", "label__ne"]), st.sampled_from(LABELS)),
    st.tuples(st.just("label__isnull"), st.booleans()),
    st.tuples(st.sampled_from(["label__in", "label__not_in"]),
              st.lists(st.sampled_from([v for v in LABELS if v is not None]), max_size=2)),
)
tree = st.recursive(
    leaf.map(lambda c: ("leaf", c)),
    lambda inner: st.tuples(st.sampled_from(["and", "or", "not"]),
                            st.lists(inner, min_size=1, max_size=3)),
    max_leaves=4,
)
operand = st.one_of(st.sampled_from(["n", "m"]).map(lambda f: ("F", f)),
                    small.map(lambda v: ("lit", v)))
arith = st.tuples(st.just("op"), st.sampled_from(["+", "-", "*"]), operand,
                  st.sampled_from(["n", "m"]).map(lambda f: ("F", f)))
update_values = {
    "code": st.sampled_from(CODES).map(lambda v: ("value", v)),
    "label": st.sampled_from(LABELS).map(lambda v: ("value", v)),
    "n": st.one_of(small.map(lambda v: ("value", v)), arith),
    "m": st.one_of(small.map(lambda v: ("value", v)), arith),
}
updates = st.lists(st.sampled_from(list(update_values)), min_size=1, max_size=2,
                   unique=True).flatmap(
    lambda names: st.tuples(*(st.tuples(st.just(n), update_values[n]) for n in names)))
rows = st.lists(st.fixed_dictionaries({
    "code": st.sampled_from(CODES), "n": small, "m": small,
    "label": st.sampled_from(LABELS)}), max_size=8)


def _to_q(node: Any) -> Q:
    kind, body = node
    if kind == "leaf":
        return Q(**{body[0]: body[1]})
    children = [_to_q(child) for child in body]
    if kind == "or":
        return functools.reduce(lambda a, b: a | b, children)
    combined = Q(*children)
    return ~combined if kind == "not" else combined


def _tree_matches(row: dict[str, Any], node: Any) -> bool:
    """NULL-aware like registers' SQL: a NULL comparison is false, NOT included."""
    kind, body = node
    if kind == "leaf":
        name, _, lookup = body[0].partition("__")
        return _match(row[name], lookup or "eq", body[1])
    found = [_tree_matches(row, child) for child in body]
    if kind == "or":
        return any(found)
    return not all(found) if kind == "not" else all(found)


def _tree_reads(node: Any) -> set[str]:
    kind, body = node
    if kind == "leaf":
        return {body[0].partition("__")[0]}
    return set().union(*(_tree_reads(child) for child in body))


def _value(spec: Any) -> Any:
    if spec[0] == "value":
        return spec[1]
    if spec[0] == "F":
        return F(spec[1])
    if spec[0] == "lit":
        return spec[1]
    _, op, left, right = spec
    a, b = _value(left), _value(right)
    return {"+": lambda: a + b, "-": lambda: a - b, "*": lambda: a * b}[op]()


def _computed(spec: Any, row: dict[str, Any]) -> Any:
    if spec[0] in ("value", "lit"):
        return spec[1]
    if spec[0] == "F":
        return row[spec[1]]
    _, op, left, right = spec
    a, b = _computed(left, row), _computed(right, row)
    return {"+": a + b, "-": a - b, "*": a * b}[op]


@pytest.fixture
def Item(database_url: str) -> Any:
    return _model(database_url)


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(seed=rows, where=tree, new=updates, use_async=st.booleans())
def test_every_backend_returns_exactly_the_rows_the_reference_updates(
        database_url: str, backend: str, Item: Any, seed: list[dict[str, Any]], where: Any,
        new: tuple[tuple[str, Any], ...], use_async: bool) -> None:
    Item.objects.truncate()
    stored = [r.model_dump() for r in Item.objects.bulk_create([dict(r) for r in seed])]
    expected = []
    for row in stored:
        if _tree_matches(row, where):
            row.update({name: _computed(spec, dict(row)) for name, spec in new})
            expected.append(tuple(row[f] for f in ("id", *FIELDS)))
    call = dict((name, _value(spec)) for name, spec in new)
    if use_async:
        got, log = asyncio.run(_aupdate(database_url, Item, _to_q(where), call))
    else:
        with _logged(database_url) as log:
            got = Item.objects.update_where(_to_q(where), **call)
    assert _plain(got) == expected
    assert _plain(Item.objects.filter(order_by="id")) == [
        tuple(r[f] for f in ("id", *FIELDS)) for r in stored]
    fast = all(spec[0] == "value" for _, spec in new) and not (
        _tree_reads(where) & {name for name, _ in new})
    assert log.path() == _expected_path(backend, fast)


async def _aupdate(url: str, Item: Any, where: Q,
                   call: dict[str, Any]) -> tuple[list[Any], Log]:
    try:
        with _logged(url) as log:
            return list(await Item.objects.aupdate_where(where, **call)), log
    finally:
        await aio.adispose_all()


# --- more than one IN chunk of rows ----------------------------------------------------

def test_more_rows_than_an_in_chunk_on_every_path(database_url: str, backend: str) -> None:
    Item = _model(database_url)
    total = IN_CHUNK + 7
    Item.objects.bulk_create([{"n": i % 2, "m": 1} for i in range(total)])
    with _logged(database_url) as log:
        got = Item.objects.update_where({"m": 1}, label="all")
    assert len(got) == total and {r.label for r in got} == {"all"}
    assert [r.id for r in got] == list(range(1, total + 1))
    assert log.path() == _expected_path(backend, fast=True)
    with _logged(database_url) as log:
        got = Item.objects.update_where({"label": "all"}, label="again")
    assert len(got) == total and {r.label for r in got} == {"again"}
    assert log.path() == _expected_path(backend, fast=False)
    if backend == "mysql":  # two chunks: lock, then UPDATE and SELECT per chunk
        assert len(log) == 5
    assert Item.objects.count(label="again") == total


# --- the fallback: the re-read finds rows the UPDATE did not write -----------------------

def _mysql_only(backend: str) -> None:
    if backend != "mysql":
        pytest.skip("the re-read path exists on MySQL/MariaDB only")


def test_a_stale_snapshot_in_a_transaction_falls_back_to_locking(
        database_url: str, backend: str, raw: Any) -> None:
    """REPEATABLE READ: the block's first read fixed its snapshot; a row another
    transaction moved out of the WHERE since is still seen by the plain re-read."""
    _mysql_only(backend)
    Item = _model(database_url)
    Item.objects.bulk_create([{"m": 1, "code": str(i)} for i in range(IN_CHUNK + 3)])
    moved = 2
    with Item.objects.transaction():
        assert Item.objects.count(m=1) == IN_CHUNK + 3  # the snapshot
        raw.execute("UPDATE uw_items SET m = 2 WHERE id = :id", {"id": moved})
        with _logged(database_url) as log:
            got = Item.objects.update_where({"m": 1}, label="new")
        assert log.path() == "fallback"
        assert [r.id for r in got] == [i for i in range(1, IN_CHUNK + 4) if i != moved]
        assert {(r.m, r.label) for r in got} == {(1, "new")}
    assert Item.objects.require(moved).label is None
    assert Item.objects.count(label="new") == IN_CHUNK + 2


async def test_a_stale_snapshot_in_an_async_transaction_falls_back_too(
        database_url: str, backend: str, raw: Any) -> None:
    _mysql_only(backend)
    Item = _model(database_url)
    Item.objects.bulk_create([{"m": 1}, {"m": 1}, {"m": 1}])
    try:
        async with Item.objects.atransaction():
            assert await Item.objects.acount(m=1) == 3
            raw.execute("DELETE FROM uw_items WHERE id = 1")
            with _logged(database_url) as log:
                got = await Item.objects.aupdate_where({"m": 1}, label="new")
            assert log.path() == "fallback"
            assert [(r.id, r.label) for r in got] == [(2, "new"), (3, "new")]
    finally:
        await aio.adispose_all()
    assert _plain(Item.objects.all()) == [(2, "", 0, 1, "new"), (3, "", 0, 1, "new")]


@contextmanager
def _before_reselect(url: str, action: Callable[[], None]) -> Iterator[list[str]]:
    """Run ``action`` once, just before the SELECT that follows update_where's UPDATE."""
    seen: list[str] = []

    def on_execute(conn: Any, cursor: Any, statement: str, *rest: Any) -> None:
        if "uw_items" not in statement:
            return
        seen.append(statement)
        if len(seen) == 2 and statement.startswith("SELECT") and "FOR UPDATE" not in statement:
            action()

    engine = get_engine(url)
    sa.event.listen(engine, "before_cursor_execute", on_execute)
    try:
        yield seen
    finally:
        sa.event.remove(engine, "before_cursor_execute", on_execute)


@contextmanager
def _other_connection(url: str) -> Iterator[Any]:
    """A second server session, in autocommit, waiting at most 5s for a lock."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    conn = engine.raw_connection()
    try:
        cursor = conn.cursor()
        cursor.execute("SET SESSION innodb_lock_wait_timeout = 5")
        conn.commit()
        yield conn
    finally:
        conn.close()
        engine.dispose()


def test_a_row_committed_between_update_and_reread_under_read_committed_is_updated_too(
        database_url: str, backend: str) -> None:
    """READ COMMITTED: a row another session inserts after the UPDATE matches the re-read;
    the locking path then updates it as well, so the result is every row written."""
    _mysql_only(backend)
    Item = _model(database_url)
    Item.objects.bulk_create([{"m": 1}, {"m": 0}, {"m": 1}])
    session = Item.objects.database.autocommit_connection()
    session.cursor().execute("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED")
    try:
        with _other_connection(database_url) as other:
            def insert() -> None:
                other.cursor().execute("INSERT INTO uw_items (code, n, m) VALUES ('late', 0, 1)")
                other.commit()

            with _before_reselect(database_url, insert) as seen:
                got = Item.objects.update_where({"m": 1}, label="new")
        assert any("FOR UPDATE" in s for s in seen[2:]), seen
        assert [(r.id, r.code, r.label) for r in got] == [
            (1, "", "new"), (3, "", "new"), (4, "late", "new")]
        assert Item.objects.count(label="new") == 3
    finally:
        session.cursor().execute("SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ")


def test_the_reread_flow_on_a_connection_counting_changed_rows_falls_back(
        database_url: str, backend: str) -> None:
    """Without ``CLIENT.FOUND_ROWS`` (a plain PyMySQL connection) the UPDATE's rowcount
    counts changed rows only: rows already holding the value make the counts differ, and
    the flow still returns every matching row."""
    _mysql_only(backend)
    import pymysql

    Item = _model(database_url)
    Item.objects.bulk_create([{"m": 1, "label": "new"}, {"m": 1}, {"m": 2}])
    flow, _, finish, atomic, _, _ = Item.objects._plan_update_where({"m": 1}, {"label": "new"})
    assert atomic
    url = sa.make_url(database_url)
    conn = pymysql.connect(host=url.host, port=url.port or 3306, user=url.username,
                           password=url.password or "", database=url.database)
    sent: list[str] = []

    def execute(statement: Any) -> Any:
        sql, params, _ = statement
        sent.append(sql.split(None, 1)[0] + (" FOR UPDATE" if "FOR UPDATE" in sql else ""))
        cursor = conn.cursor()
        cursor.execute(sql, params)
        return cursor

    try:
        conn.begin()
        rows = drive(flow(), execute)
        conn.commit()
    finally:
        conn.close()
    assert sent == ["UPDATE", "SELECT", "SELECT FOR UPDATE", "UPDATE", "SELECT"]
    assert [(r.id, r.label) for r in finish(rows)] == [(1, "new"), (2, "new")]


def test_sqlalchemy_connections_report_matched_rows(database_url: str, backend: str) -> None:
    """The premise of the re-read path: rowcount counts rows matched, changed or not, on
    the sync and the async connections (the fast path above stayed fast for rows that
    already held the value only because of this)."""
    _mysql_only(backend)
    Item = _model(database_url)
    Item.objects.bulk_create([{"m": 1, "label": "same"}, {"m": 1, "label": "same"}])
    conn = Item.objects.database.autocommit_connection()
    cursor = conn.cursor()
    cursor.execute("UPDATE uw_items SET label = 'same' WHERE m = 1")
    assert cursor.rowcount == 2

    async def through_async() -> int:
        from registers.db.async_engine import async_database

        try:
            await Item.objects.aupdate_where({"m": 1}, label="same")  # opens the connection
            with _logged(database_url) as log:
                await Item.objects.aupdate_where({"m": 1}, label="same")
            assert log.path() == "reselect"
            direct = async_database(Item.objects.database).direct()
            assert direct is not None and direct._idle
            acursor = await direct._idle[-1].raw.cursor()
            await acursor.execute("UPDATE uw_items SET label = 'same' WHERE m = 1")
            return int(acursor.rowcount)
        finally:
            await aio.adispose_all()

    assert asyncio.run(through_async()) == 2


# --- concurrency -----------------------------------------------------------------------

GROUPS = {"A": [0, 1, 2, 3], "B": [2, 3, 4, 5]}


@pytest.mark.parametrize("isolation", [None, "READ COMMITTED"])
def test_overlapping_concurrent_update_wheres_return_exactly_what_they_wrote(
        database_url: str, backend: str, isolation: str | None) -> None:
    """Two threads update overlapping row sets while a third inserts matching rows: each
    result holds distinct rows, all matching and carrying its own value; every row that
    existed when it started is in it; every row left carrying its value is in it.
    ``isolation``: the sessions' level (None: the backend's default)."""
    if isolation is not None and backend != "mysql":
        pytest.skip("READ COMMITTED is what the MySQL re-read path must also survive")

    @database_registry(database_url, table_name="uw_conc")
    class Row(BaseModel):
        id: int | None = None
        grp: int
        tag: str = ""

    Row.objects.bulk_create([{"grp": i % 6} for i in range(60)])
    rounds = 12
    results: dict[str, tuple[set[int], list[Any]]] = {}
    committed: list[int] = []  # ids whose insert has returned
    errors: list[BaseException] = []
    lock = threading.Lock()

    def session() -> None:
        Row.objects.count()  # opens the thread's connection
        if isolation is not None:
            conn = Row.objects.database.autocommit_connection()
            conn.cursor().execute(f"SET SESSION TRANSACTION ISOLATION LEVEL {isolation}")

    def updater(name: str) -> None:
        try:
            session()
            for i in range(rounds):
                with lock:
                    existed = set(committed)
                token = f"{name}{i}"
                got = Row.objects.update_where({"grp__in": GROUPS[name]}, tag=token)
                results[token] = (existed, got)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    def inserter() -> None:
        try:
            session()
            for i in range(rounds * 3):
                made = Row.objects.create(grp=i % 6)
                with lock:
                    committed.append(made.id)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=updater, args=(n,)) for n in GROUPS]
    threads.append(threading.Thread(target=inserter))
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    assert len(results) == rounds * len(GROUPS)
    final = {r.id: r for r in Row.objects.all()}
    seeded = set(range(1, 61))
    for token, (existed, got) in results.items():
        ids = [r.id for r in got]
        assert len(ids) == len(set(ids)), token
        assert all(r.tag == token and r.grp in GROUPS[token[0]] for r in got), token
        must = {k for k in seeded | existed if final[k].grp in GROUPS[token[0]]}
        assert must <= set(ids), (token, sorted(must - set(ids)))
        carrying = {k for k, r in final.items() if r.tag == token}
        assert carrying <= set(ids), token


def test_inside_a_transaction_the_reread_path_commits_or_rolls_back_with_the_block(
        database_url: str, backend: str) -> None:
    Item = _model(database_url)
    Item.objects.bulk_create([{"m": 1}, {"m": 1}, {"m": 2}])
    with Item.objects.transaction():
        with _logged(database_url) as log:
            got = Item.objects.update_where({"m": 1}, label="kept")
        assert [r.id for r in got] == [1, 2]
        assert log.path() == _expected_path(backend, fast=True)
    with pytest.raises(RuntimeError), Item.objects.transaction():
        Item.objects.update_where({"m": 2}, label="lost")
        raise RuntimeError("roll back")
    assert [(r.id, r.label) for r in Item.objects.all()] == [(1, "kept"), (2, "kept"), (3, None)]
