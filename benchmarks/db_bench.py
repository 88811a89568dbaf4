"""registers.db against hand-written sqlite3 and its peers, on file SQLite in WAL mode.

Run from the repository root (after ``pip install -e ".[bench]"``)::

    python -m benchmarks.db_bench            # full run: 50,000-row bulk insert, ~2-4 minutes
    python -m benchmarks.db_bench --quick    # smoke run: 5,000 rows, one repeat, ~20 seconds
    python -m benchmarks.db_bench --rows 100000 --rounds 5
    python -m benchmarks.db_bench --contenders floor,registers --profile /tmp/prof

(``python benchmarks/db_bench.py ...`` works the same.)

Every contender runs in its own subprocess, one after the other, on its own fresh database
file in a temporary directory, with the same pragmas (``journal_mode=WAL``,
``synchronous=NORMAL``, ``foreign_keys=ON``), the same table (``users``: id, name, email,
age, active, score) with an index on ``age``, and the same pydantic model: every row going
in is validated by the model and every row coming out is returned as a validated model.

Contenders:

* ``floor``      hand-written ``sqlite3`` (one autocommit connection) + ``User.model_validate``
* ``sa_core``    SQLAlchemy Core at its best: held connections (an AUTOCOMMIT one for
                 single statements, a transactional one for bulk/update), prebuilt statements
* ``sqlmodel``   SQLModel table model, one ``Session(expire_on_commit=False)``
* ``peewee``     Peewee, ``.dicts()`` reads, ``insert()``/``insert_many()`` writes
* ``django``     Django ORM configured in-process (``settings.configure``), ``.values()`` reads
* ``registers``  ``registers.db.database_registry``

Every table keeps its keys from being handed out twice (SPEC D8: managed keys are never
reused), as registers' tables do: ``INTEGER PRIMARY KEY AUTOINCREMENT`` for the floor,
``sqlite_autoincrement`` for SQLAlchemy Core and SQLModel, ``playhouse``'s ``AutoIncrementField``
for Peewee, and Django's ``AutoField`` (AUTOINCREMENT on SQLite already). Each insert then
also updates ``sqlite_sequence``: about 4 us of the floor's 16 us a committed insert.

Workloads (sizes for ``--rows N``, default N = 50,000):

* single insert   N/25 committed ``create`` calls, each returning the model with its id
* bulk insert     N rows validated and inserted in one transaction, models get their ids
* get by key      N/10 lookups by primary key returning validated models
* filter          ``age == 25``, returns N/10 rows as validated models
* upsert          N/25 committed upserts of existing rows
* update_where    UPDATE of the N/10 rows with ``age == 25``, re-read as validated models
* count           ``COUNT(*) WHERE age == 25`` (N/10 matching rows), N/50 calls
* iterate         stream 4N rows in key order, batches of 1,000; peak traced memory (tracemalloc)
                  of the streaming pass over N rows and over 4N rows

Results: a table of ops/s (rows/s for the row-volume workloads) with the ratio to the floor,
the SPEC P2/P3 targets and whether they hold, and JSON in ``benchmarks/results/db.json``.
This is a benchmark, not a test: nothing here asserts on timings.
"""

import argparse
import contextlib
import cProfile
import gc
import itertools
import json
import os
import platform
import random
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Iterator
from importlib import metadata as importlib_metadata
from operator import attrgetter
from pathlib import Path
from typing import Any

from pydantic import BaseModel

HERE = Path(__file__).resolve().parent
DEFAULT_JSON = HERE / "results" / "db.json"
CONTENDERS = ["floor", "sa_core", "sqlmodel", "peewee", "django", "registers"]
PEERS = ["sa_core", "sqlmodel", "peewee", "django"]
COLUMNS = ("id", "name", "email", "age", "active", "score")
VALUE_COLUMNS = COLUMNS[1:]
PRAGMAS = ("PRAGMA journal_mode=WAL", "PRAGMA synchronous=NORMAL", "PRAGMA foreign_keys=ON")
FILTER_AGE = 25
ITER_BATCH = 1000

# (workload, title, unit). Row-volume workloads are reported in rows/s.
WORKLOADS = [
    ("single_insert", "single insert", "ops/s"),
    ("bulk_insert", "bulk insert", "rows/s"),
    ("get_by_key", "get by key", "ops/s"),
    ("filter", "filter", "rows/s"),
    ("upsert", "upsert", "ops/s"),
    ("update_where", "update_where", "rows/s"),
    ("count", "count", "ops/s"),
    ("iterate", "iterate", "rows/s"),
]
# SPEC P2: minimum ratio of registers to the floor.
P2_TARGETS = {
    "get_by_key": 0.5,
    "filter": 0.6,
    "bulk_insert": 0.7,
    "single_insert": 0.8,
    "update_where": 0.8,
    "count": 0.6,
}


class User(BaseModel):
    """The model every contender reads into (and validates writes with)."""

    id: int | None = None
    name: str
    email: str
    age: int
    active: bool
    score: float


def values_of(m: BaseModel) -> dict[str, Any]:
    """The non-key column values of a validated model (what peers hand to their ORM)."""
    d = m.__dict__
    return {"name": d["name"], "email": d["email"], "age": d["age"],
            "active": d["active"], "score": d["score"]}


def apply_pragmas(conn: Any) -> None:
    for pragma in PRAGMAS:
        conn.execute(pragma)


# --- data ---------------------------------------------------------------------------------


def bulk_row(i: int) -> dict[str, Any]:
    """Bulk rows: ages 20..29, so ``age == 25`` matches a tenth of them."""
    return {"name": f"user{i}", "email": f"user{i}@example.com", "age": 20 + i % 10,
            "active": i % 2 == 0, "score": (i % 1000) / 10}


def single_row(i: int) -> dict[str, Any]:
    """Singly inserted rows: ages 60..69, outside every filter."""
    return {"name": f"single{i}", "email": f"single{i}@example.com", "age": 60 + i % 10,
            "active": i % 3 == 0, "score": (i % 500) / 4}


class Sizes:
    def __init__(self, rows: int) -> None:
        self.bulk = rows
        self.single = max(20, rows // 25)
        self.get = max(50, rows // 10)
        self.upsert = max(20, rows // 25)
        self.count = max(50, rows // 50)
        self.iterate = rows * 4

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


# --- contenders ---------------------------------------------------------------------------


class Contender:
    """One way of doing the workloads. Every method returns validated ``User`` models."""

    name = ""

    def setup(self, path: str) -> None:
        raise NotImplementedError

    def close(self) -> None:
        pass

    def reset(self) -> None:
        """Untimed, between repeats: drop caches such as an ORM identity map."""

    def insert_one(self, data: dict[str, Any]) -> Any:
        raise NotImplementedError

    def bulk_insert(self, rows: list[dict[str, Any]]) -> list[Any]:
        raise NotImplementedError

    def get(self, key: int) -> Any:
        raise NotImplementedError

    def filter_age(self, age: int) -> list[Any]:
        raise NotImplementedError

    def upsert(self, data: dict[str, Any]) -> Any:
        raise NotImplementedError

    def update_age(self, age: int, score: float) -> list[Any]:
        raise NotImplementedError

    def count_age(self, age: int) -> int:
        raise NotImplementedError

    def iterate(self) -> Iterator[Any]:
        raise NotImplementedError


SELECT_ALL = "SELECT id, name, email, age, active, score FROM users"


class Floor(Contender):
    """Hand-written sqlite3 + pydantic validation of every row in and out."""

    name = "floor"

    def setup(self, path: str) -> None:
        self.conn = sqlite3.connect(path, isolation_level=None)
        apply_pragmas(self.conn)
        self.conn.execute(
            "CREATE TABLE users (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL, "
            "email TEXT NOT NULL, age INTEGER NOT NULL, active BOOLEAN NOT NULL, "
            "score FLOAT NOT NULL)"
        )
        self.sql_insert = ("INSERT INTO users (name, email, age, active, score) "
                           "VALUES (?, ?, ?, ?, ?)")
        self.sql_get = SELECT_ALL + " WHERE id = ?"
        self.sql_filter = SELECT_ALL + " WHERE age = ?"
        self.sql_upsert = (
            "INSERT INTO users (id, name, email, age, active, score) VALUES (?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (id) DO UPDATE SET name = excluded.name, email = excluded.email, "
            "age = excluded.age, active = excluded.active, score = excluded.score"
        )
        self.sql_update = ("UPDATE users SET score = ? WHERE age = ? "
                           "RETURNING id, name, email, age, active, score")
        self.sql_count = "SELECT COUNT(*) FROM users WHERE age = ?"

    def close(self) -> None:
        self.conn.close()

    def insert_one(self, data: dict[str, Any]) -> User:
        m = User.model_validate(data)
        m.id = self.conn.execute(
            self.sql_insert, (m.name, m.email, m.age, m.active, m.score)
        ).lastrowid
        return m

    def bulk_insert(self, rows: list[dict[str, Any]]) -> list[User]:
        models = [User.model_validate(d) for d in rows]
        params = [(m.name, m.email, m.age, m.active, m.score) for m in models]
        conn = self.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.executemany(self.sql_insert, params)
            last = conn.execute("SELECT last_insert_rowid()").fetchone()[0]
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        for m, key in zip(models, range(last - len(models) + 1, last + 1)):
            m.id = key
        return models

    def get(self, key: int) -> User | None:
        row = self.conn.execute(self.sql_get, (key,)).fetchone()
        return User.model_validate(dict(zip(COLUMNS, row))) if row is not None else None

    def filter_age(self, age: int) -> list[User]:
        validate = User.model_validate
        return [validate(dict(zip(COLUMNS, r)))
                for r in self.conn.execute(self.sql_filter, (age,)).fetchall()]

    def upsert(self, data: dict[str, Any]) -> User:
        m = User.model_validate(data)
        self.conn.execute(self.sql_upsert, (m.id, m.name, m.email, m.age, m.active, m.score))
        return m

    def update_age(self, age: int, score: float) -> list[User]:
        conn = self.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            rows = conn.execute(self.sql_update, (score, age)).fetchall()
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        validate = User.model_validate
        models = [validate(dict(zip(COLUMNS, r))) for r in rows]
        models.sort(key=attrgetter("id"))
        return models

    def count_age(self, age: int) -> int:
        return int(self.conn.execute(self.sql_count, (age,)).fetchone()[0])

    def iterate(self) -> Iterator[User]:
        validate = User.model_validate
        cursor = self.conn.execute(SELECT_ALL + " ORDER BY id")
        try:
            while rows := cursor.fetchmany(ITER_BATCH):
                for r in rows:
                    yield validate(dict(zip(COLUMNS, r)))
        finally:
            cursor.close()


def _sqlalchemy_engine(path: str) -> Any:
    import sqlalchemy as sa

    engine = sa.create_engine(f"sqlite:///{path}")

    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        cursor = dbapi_conn.cursor()
        for pragma in PRAGMAS:
            cursor.execute(pragma)
        cursor.close()

    return engine


class SACore(Contender):
    """SQLAlchemy Core at its best: held connections, statements built once."""

    name = "sa_core"

    def setup(self, path: str) -> None:
        import sqlalchemy as sa
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        self.engine = _sqlalchemy_engine(path)
        md = sa.MetaData()
        t = self.table = sa.Table(
            "users", md,
            sa.Column("id", sa.Integer, primary_key=True),
            sa.Column("name", sa.String, nullable=False),
            sa.Column("email", sa.String, nullable=False),
            sa.Column("age", sa.Integer, nullable=False),
            sa.Column("active", sa.Boolean, nullable=False),
            sa.Column("score", sa.Float, nullable=False),
            sqlite_autoincrement=True,  # keys never reused, as the contract asks
        )
        md.create_all(self.engine)
        # Single statements on an AUTOCOMMIT connection (no BEGIN/COMMIT round trips);
        # multi-statement work on a transactional one.
        self.ac = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        self.tx = self.engine.connect()
        self.ins = t.insert()
        self.get_stmt = sa.select(t).where(t.c.id == sa.bindparam("k"))
        self.filter_stmt = sa.select(t).where(t.c.age == sa.bindparam("a"))
        up = sqlite_insert(t)
        self.upsert_stmt = up.on_conflict_do_update(
            index_elements=[t.c.id], set_={c: up.excluded[c] for c in VALUE_COLUMNS}
        )
        self.update_stmt = (
            sa.update(t).where(t.c.age == sa.bindparam("a"))
            .values(score=sa.bindparam("s")).returning(*t.c)
        )
        self.count_stmt = (
            sa.select(sa.func.count()).select_from(t).where(t.c.age == sa.bindparam("a"))
        )
        self.iter_stmt = sa.select(t).order_by(t.c.id).execution_options(yield_per=ITER_BATCH)
        self.last_rowid = sa.text("SELECT last_insert_rowid()")

    def close(self) -> None:
        self.ac.close()
        self.tx.close()
        self.engine.dispose()

    def insert_one(self, data: dict[str, Any]) -> User:
        m = User.model_validate(data)
        m.id = self.ac.execute(self.ins, values_of(m)).inserted_primary_key[0]
        return m

    def bulk_insert(self, rows: list[dict[str, Any]]) -> list[User]:
        # Plain executemany + last_insert_rowid() measured faster than
        # insert().returning(..., sort_by_parameter_order=True) (insertmanyvalues).
        models = [User.model_validate(d) for d in rows]
        params = [values_of(m) for m in models]
        with self.tx.begin():
            self.tx.execute(self.ins, params)
            last = self.tx.execute(self.last_rowid).scalar_one()
        for m, key in zip(models, range(last - len(models) + 1, last + 1)):
            m.id = key
        return models

    def get(self, key: int) -> User | None:
        row = self.ac.execute(self.get_stmt, {"k": key}).first()
        return User.model_validate(dict(zip(COLUMNS, row))) if row is not None else None

    def filter_age(self, age: int) -> list[User]:
        validate = User.model_validate
        return [validate(dict(zip(COLUMNS, r)))
                for r in self.ac.execute(self.filter_stmt, {"a": age})]

    def upsert(self, data: dict[str, Any]) -> User:
        m = User.model_validate(data)
        self.ac.execute(self.upsert_stmt, {"id": m.id, **values_of(m)})
        return m

    def update_age(self, age: int, score: float) -> list[User]:
        with self.tx.begin():
            rows = self.tx.execute(self.update_stmt, {"a": age, "s": score}).all()
        validate = User.model_validate
        models = [validate(dict(zip(COLUMNS, r))) for r in rows]
        models.sort(key=attrgetter("id"))
        return models

    def count_age(self, age: int) -> int:
        return int(self.ac.execute(self.count_stmt, {"a": age}).scalar_one())

    def iterate(self) -> Iterator[User]:
        validate = User.model_validate
        with self.ac.execute(self.iter_stmt) as result:
            for r in result:
                yield validate(dict(zip(COLUMNS, r)))


class SQLModelContender(Contender):
    """SQLModel: a table model validated on the way in, rows validated into ``User``."""

    name = "sqlmodel"

    def setup(self, path: str) -> None:
        import sqlalchemy as sa
        from sqlmodel import Field, Session, SQLModel, func, select

        class UserTable(SQLModel, table=True):
            __tablename__ = "users"
            __table_args__ = {"sqlite_autoincrement": True}  # keys never reused
            id: int | None = Field(default=None, primary_key=True)
            name: str
            email: str
            age: int
            active: bool
            score: float

        self.T = UserTable
        self.select, self.func, self.update = select, func, sa.update
        self.engine = _sqlalchemy_engine(path)
        SQLModel.metadata.create_all(self.engine)
        self.session = Session(self.engine, expire_on_commit=False)

    def close(self) -> None:
        self.session.close()
        self.engine.dispose()

    def reset(self) -> None:
        self.session.expunge_all()

    def _out(self, obj: Any) -> User:
        return User.model_validate(obj, from_attributes=True)

    def insert_one(self, data: dict[str, Any]) -> Any:
        obj = self.T.model_validate(data)
        self.session.add(obj)
        self.session.commit()
        return obj

    def bulk_insert(self, rows: list[dict[str, Any]]) -> list[Any]:
        objs = [self.T.model_validate(d) for d in rows]
        self.session.add_all(objs)
        self.session.commit()
        return objs

    def get(self, key: int) -> User | None:
        obj = self.session.get(self.T, key)
        return self._out(obj) if obj is not None else None

    def filter_age(self, age: int) -> list[User]:
        rows = self.session.exec(self.select(self.T).where(self.T.age == age)).all()
        self.session.commit()
        return [self._out(o) for o in rows]

    def upsert(self, data: dict[str, Any]) -> Any:
        obj = self.session.merge(self.T.model_validate(data))
        self.session.commit()
        return obj

    def update_age(self, age: int, score: float) -> list[User]:
        T = self.T
        self.session.exec(self.update(T).where(T.age == age).values(score=score))
        rows = self.session.exec(self.select(T).where(T.age == age).order_by(T.id)).all()
        self.session.commit()
        return [self._out(o) for o in rows]

    def count_age(self, age: int) -> int:
        T = self.T
        return int(self.session.exec(
            self.select(self.func.count()).select_from(T).where(T.age == age)).one())

    def iterate(self) -> Iterator[User]:
        T = self.T
        stmt = self.select(T).order_by(T.id).execution_options(yield_per=ITER_BATCH)
        for obj in self.session.exec(stmt):
            yield self._out(obj)
        self.session.commit()


class PeeweeContender(Contender):
    name = "peewee"

    def setup(self, path: str) -> None:
        import peewee as pw
        from playhouse.sqlite_ext import AutoIncrementField

        self.db = pw.SqliteDatabase(
            path, pragmas={"journal_mode": "wal", "synchronous": "normal", "foreign_keys": 1}
        )

        class PUser(pw.Model):
            id = AutoIncrementField()  # AUTOINCREMENT: keys never reused
            name = pw.TextField()
            email = pw.TextField()
            age = pw.IntegerField()
            active = pw.BooleanField()
            score = pw.FloatField()

            class Meta:
                database = self.db
                table_name = "users"

        self.P = PUser
        self.db.connect()
        self.db.create_tables([PUser])
        self.preserve = [PUser.name, PUser.email, PUser.age, PUser.active, PUser.score]

    def close(self) -> None:
        self.db.close()

    def insert_one(self, data: dict[str, Any]) -> User:
        m = User.model_validate(data)
        m.id = self.P.insert(**values_of(m)).execute()
        return m

    def bulk_insert(self, rows: list[dict[str, Any]]) -> list[User]:
        models = [User.model_validate(d) for d in rows]
        params = [values_of(m) for m in models]
        keys: list[int] = []
        with self.db.atomic():
            for start in range(0, len(params), 1000):
                batch = params[start:start + 1000]
                last = self.P.insert_many(batch).execute()
                keys.extend(range(last - len(batch) + 1, last + 1))
        for m, key in zip(models, keys):
            m.id = key
        return models

    def get(self, key: int) -> User | None:
        d = self.P.select().where(self.P.id == key).dicts().get_or_none()
        return User.model_validate(d) if d is not None else None

    def filter_age(self, age: int) -> list[User]:
        validate = User.model_validate
        return [validate(d) for d in self.P.select().where(self.P.age == age).dicts()]

    def upsert(self, data: dict[str, Any]) -> User:
        m = User.model_validate(data)
        self.P.insert(id=m.id, **values_of(m)).on_conflict(
            conflict_target=[self.P.id], preserve=self.preserve).execute()
        return m

    def update_age(self, age: int, score: float) -> list[User]:
        P = self.P
        with self.db.atomic():
            P.update(score=score).where(P.age == age).execute()
            rows = list(P.select().where(P.age == age).order_by(P.id).dicts())
        validate = User.model_validate
        return [validate(d) for d in rows]

    def count_age(self, age: int) -> int:
        return int(self.P.select().where(self.P.age == age).count())

    def iterate(self) -> Iterator[User]:
        validate = User.model_validate
        for d in self.P.select().order_by(self.P.id).dicts().iterator():
            yield validate(d)


class DjangoContender(Contender):
    name = "django"

    def setup(self, path: str) -> None:
        import django
        from django.conf import settings

        settings.configure(
            DEBUG=False,
            USE_TZ=False,
            INSTALLED_APPS=[],
            DATABASES={"default": {
                "ENGINE": "django.db.backends.sqlite3",
                "NAME": path,
                # Django itself runs PRAGMA foreign_keys = ON on every connection.
                "OPTIONS": {"init_command": "PRAGMA journal_mode=WAL;PRAGMA synchronous=NORMAL"},
            }},
        )
        django.setup()
        from django.db import connection, models, transaction

        class DUser(models.Model):
            name = models.TextField()
            email = models.TextField()
            age = models.IntegerField()
            active = models.BooleanField()
            score = models.FloatField()

            class Meta:
                app_label = "bench"
                db_table = "users"

        self.D = DUser
        self.atomic = transaction.atomic
        self.connection = connection
        with connection.schema_editor() as editor:
            editor.create_model(DUser)

    def close(self) -> None:
        self.connection.close()

    def insert_one(self, data: dict[str, Any]) -> User:
        m = User.model_validate(data)
        m.id = self.D.objects.create(**values_of(m)).pk
        return m

    def bulk_insert(self, rows: list[dict[str, Any]]) -> list[User]:
        models = [User.model_validate(d) for d in rows]
        D = self.D
        objs = D.objects.bulk_create([D(**values_of(m)) for m in models])
        for m, o in zip(models, objs):
            m.id = o.pk
        return models

    def get(self, key: int) -> User | None:
        try:
            return User.model_validate(self.D.objects.values().get(pk=key))
        except self.D.DoesNotExist:
            return None

    def filter_age(self, age: int) -> list[User]:
        validate = User.model_validate
        return [validate(d) for d in self.D.objects.filter(age=age).values()]

    def upsert(self, data: dict[str, Any]) -> User:
        m = User.model_validate(data)
        self.D.objects.bulk_create(
            [self.D(id=m.id, **values_of(m))], update_conflicts=True,
            unique_fields=["id"], update_fields=list(VALUE_COLUMNS),
        )
        return m

    def update_age(self, age: int, score: float) -> list[User]:
        qs = self.D.objects.filter(age=age)
        with self.atomic():
            qs.update(score=score)
            rows = list(qs.order_by("id").values())
        validate = User.model_validate
        return [validate(d) for d in rows]

    def count_age(self, age: int) -> int:
        return int(self.D.objects.filter(age=age).count())

    def iterate(self) -> Iterator[User]:
        validate = User.model_validate
        for d in self.D.objects.order_by("id").values().iterator(chunk_size=ITER_BATCH):
            yield validate(d)


class RegistersContender(Contender):
    name = "registers"

    def setup(self, path: str) -> None:
        from registers.db import database_registry

        @database_registry(path, table_name="users")
        class RUser(BaseModel):
            id: int | None = None
            name: str
            email: str
            age: int
            active: bool
            score: float

        self.objects = RUser.objects  # type: ignore[attr-defined]
        self.objects.create_schema()  # tables are created on first use: make it now

    def close(self) -> None:
        self.objects.dispose()

    def insert_one(self, data: dict[str, Any]) -> Any:
        return self.objects.create(**data)

    def bulk_insert(self, rows: list[dict[str, Any]]) -> list[Any]:
        return self.objects.bulk_create(rows)  # type: ignore[no-any-return]

    def get(self, key: int) -> Any:
        return self.objects.get(key)

    def filter_age(self, age: int) -> list[Any]:
        return self.objects.filter(age=age)  # type: ignore[no-any-return]

    def upsert(self, data: dict[str, Any]) -> Any:
        return self.objects.upsert(**data)

    def update_age(self, age: int, score: float) -> list[Any]:
        return self.objects.update_where({"age": age}, score=score)  # type: ignore[no-any-return]

    def count_age(self, age: int) -> int:
        return int(self.objects.count(age=age))

    def iterate(self) -> Iterator[Any]:
        return self.objects.iterate(batch_size=ITER_BATCH)  # type: ignore[no-any-return]


CONTENDER_CLASSES: dict[str, type[Contender]] = {
    c.name: c for c in (Floor, SACore, SQLModelContender, PeeweeContender, DjangoContender,
                        RegistersContender)
}


# --- worker: one contender, all workloads ---------------------------------------------------


class Runner:
    def __init__(self, contender: Contender, profile_dir: Path | None) -> None:
        self.c = contender
        self.profile_dir = profile_dir
        self.results: dict[str, dict[str, Any]] = {}

    def measure(self, workload: str, ops: int, run: Callable[[int], Any],
                check: Callable[[Any], None], before: Callable[[int], None] | None = None,
                repeats: int = 1, warmup: bool | Callable[[], Any] = False) -> None:
        """Time ``run`` ``repeats`` times (wall and CPU clocks); ``check`` each result.

        ``warmup``: True runs ``run`` once untimed first (read-only workloads); a callable
        is run untimed instead (a few writes, to warm caches without skewing the data).
        """
        wall: list[float] = []
        cpu: list[float] = []
        profiler = cProfile.Profile() if self.profile_dir is not None else None
        self.c.reset()
        if callable(warmup):
            warmup()
        elif warmup:  # read-only workloads: warm SQLite's page cache and statement caches
            check(run(0))
        for r in range(repeats):
            if before is not None:
                before(r)
            self.c.reset()
            gc.collect()
            if profiler is not None:
                profiler.enable()
            c0, w0 = time.process_time(), time.perf_counter()
            out = run(r)
            w1, c1 = time.perf_counter(), time.process_time()
            if profiler is not None:
                profiler.disable()
            wall.append(w1 - w0)
            cpu.append(c1 - c0)
            check(out)
            del out
        self.results[workload] = {"ops": ops, "wall_s": wall, "cpu_s": cpu}
        if profiler is not None and self.profile_dir is not None:
            profiler.dump_stats(self.profile_dir / f"{self.c.name}-{workload}.pstats")


def expect(cond: bool, what: str) -> None:
    if not cond:
        raise SystemExit(f"benchmark sanity check failed: {what}")


def run_worker(name: str, sizes: Sizes, directory: Path, round_no: int,
               profile_dir: Path | None) -> dict[str, Any]:
    """One round of every workload for one contender, on a fresh database file."""
    path = str(directory / f"{name}-{round_no}.db")
    contender = CONTENDER_CLASSES[name]()
    contender.setup(path)
    raw = sqlite3.connect(path, isolation_level=None)  # untimed set-up and checks only
    apply_pragmas(raw)
    raw.execute("CREATE INDEX IF NOT EXISTS ix_users_age ON users (age)")
    run = Runner(contender, profile_dir)
    c = contender
    n = sizes

    def table_ids(where: str = "age < 60") -> list[int]:
        return [r[0] for r in raw.execute(f"SELECT id FROM users WHERE {where} ORDER BY id")]

    # single committed inserts returning the id
    singles = [single_row(i) for i in range(n.single + 50)]
    run.measure("single_insert", n.single, lambda r: [c.insert_one(d) for d in singles[50:]],
                lambda out: expect(len(out) == n.single and all(m.id for m in out), "insert ids"),
                warmup=lambda: [c.insert_one(d) for d in singles[:50]])

    # bulk insert
    bulk_data = [bulk_row(i) for i in range(n.bulk)]

    def check_bulk(out: list[Any]) -> None:
        expect(len(out) == n.bulk, "bulk count")
        expect([m.id for m in out] == table_ids()[-n.bulk:], "bulk ids match the table")

    run.measure("bulk_insert", n.bulk, lambda r: c.bulk_insert(bulk_data), check_bulk)

    # get by key
    keys = random.Random(7).sample(table_ids(), n.get)

    def get_all(r: int) -> list[Any]:
        get = c.get
        return [get(k) for k in keys]

    run.measure("get_by_key", n.get, get_all,
                lambda out: expect([m.id for m in out] == keys, "get by key"), warmup=True)

    # filter
    matching = n.bulk // 10
    run.measure("filter", matching, lambda r: c.filter_age(FILTER_AGE),
                lambda out: expect(len(out) == matching and all(m.age == FILTER_AGE for m in out),
                                   "filter"), repeats=3, warmup=True)

    # upsert of existing rows (same age, new name/email/active/score)
    existing = raw.execute("SELECT id, age FROM users WHERE age < 60").fetchall()
    chosen = random.Random(11).sample(existing, n.upsert)

    def upsert_all(r: int) -> list[Any]:
        up = c.upsert
        return [up({"id": k, "name": f"upserted{k}-{r}", "email": f"u{k}-{r}@example.org",
                    "age": age, "active": r % 2 == 0, "score": k / 7 + r}) for k, age in chosen]

    def check_upsert(out: list[Any]) -> None:
        expect(len(out) == n.upsert, "upsert count")
        k = chosen[0][0]
        expect(raw.execute("SELECT name FROM users WHERE id = ?", (k,)).fetchone()[0]
               == out[0].name, "upsert applied")

    run.measure("upsert", n.upsert, upsert_all, check_upsert,
                warmup=lambda: [c.upsert({"id": k, "name": "warm", "email": "warm@example.org",
                                          "age": age, "active": True, "score": 0.0})
                                for k, age in chosen[:50]])

    # update_where over N/10 rows, re-read as models
    def check_update(out: list[Any]) -> None:
        expect(len(out) == matching, "update_where count")
        expect(len({m.score for m in out}) == 1, "update_where values")
        expect([m.id for m in out] == sorted(m.id for m in out), "update_where key order")

    run.measure("update_where", matching, lambda r: c.update_age(FILTER_AGE, 1.5 + r),
                check_update, repeats=3)

    # count with a filter
    def count_all(r: int) -> list[int]:
        count = c.count_age
        return [count(FILTER_AGE) for _ in range(n.count)]

    run.measure("count", n.count, count_all,
                lambda out: expect(out[0] == matching and len(out) == n.count, "count"),
                warmup=True)

    # iterate: top the table up to 4N rows (untimed), stream it in key order
    total = raw.execute("SELECT COUNT(*) FROM users").fetchone()[0]
    missing = n.iterate - total
    if missing > 0:
        raw.execute("BEGIN IMMEDIATE")
        raw.executemany(
            "INSERT INTO users (name, email, age, active, score) VALUES (?, ?, ?, ?, ?)",
            ((f"fill{i}", f"fill{i}@example.com", 40 + i % 10, i % 2 == 0, i / 3)
             for i in range(missing)))
        raw.execute("COMMIT")
    raw.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def consume(r: int) -> int:
        rows = 0
        for m in c.iterate():
            rows += m.id > 0
        return rows

    run.measure("iterate", n.iterate, consume,
                lambda out: expect(out == n.iterate, "iterate row count"))

    # peak traced memory while streaming N and 4N rows (first round only; untimed)
    if round_no == 0:
        peaks = {}
        for label, limit in (("quarter", n.iterate // 4), ("full", n.iterate)):
            c.reset()
            gc.collect()
            tracemalloc.start()
            tracemalloc.reset_peak()
            rows = 0
            it = c.iterate()
            for _m in itertools.islice(it, limit):
                rows += 1
            with contextlib.suppress(AttributeError):
                it.close()  # type: ignore[attr-defined]
            del it
            peaks[label] = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
            expect(rows == limit, "iterate memory pass")
        run.results["iterate"]["peak_bytes_quarter"] = peaks["quarter"]
        run.results["iterate"]["peak_bytes_full"] = peaks["full"]
        run.results["iterate"]["peak_rows_quarter"] = n.iterate // 4

    raw.close()
    contender.close()
    return run.results


# --- orchestration and report ------------------------------------------------------------


def versions() -> dict[str, str]:
    out = {"python": platform.python_version(), "sqlite": sqlite3.sqlite_version}
    for dist in ("registers", "pydantic", "pydantic-core", "SQLAlchemy", "sqlmodel", "peewee",
                 "Django"):
        try:
            out[dist] = importlib_metadata.version(dist)
        except importlib_metadata.PackageNotFoundError:
            out[dist] = "not installed"
    return out


def machine() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {"cpu": cpu, "nproc": os.cpu_count(), "platform": platform.platform()}


def fmt_rate(x: float) -> str:
    return f"{x:,.0f}"


def report(results: dict[str, dict[str, Any]], contenders: list[str],
           clock: str) -> tuple[str, dict]:
    lines: list[str] = []
    width = 14
    head = f"{'workload':<15}{'unit':<7}" + "".join(f"{c:>{width}}" for c in contenders)
    what = ("CPU time of the benchmark process (user+sys)" if clock == "cpu"
            else "wall clock")
    lines += [f"ops/s by {what}, median sample; rows/s for row-volume workloads", head,
              "-" * len(head)]
    ratios: dict[str, dict[str, float]] = {}
    for key, title, unit in WORKLOADS:
        cells = []
        for c in contenders:
            r = results.get(c, {}).get(key)
            cells.append(fmt_rate(r["ops_per_s"]) if r else "-")
        lines.append(f"{title:<15}{unit:<7}" + "".join(f"{x:>{width}}" for x in cells))
    if "floor" in results:
        lines += ["", "ratio to the floor (higher is better)", head.replace("unit   ", "       "),
                  "-" * len(head)]
        for key, title, _unit in WORKLOADS:
            floor = results["floor"].get(key)
            cells = []
            ratios[key] = {}
            for c in contenders:
                r = results.get(c, {}).get(key)
                if r and floor:
                    ratio = r["ops_per_s"] / floor["ops_per_s"]
                    ratios[key][c] = ratio
                    cells.append(f"{ratio:.2f}x")
                else:
                    cells.append("-")
            lines.append(f"{title:<15}{'':<7}" + "".join(f"{x:>{width}}" for x in cells))
    lines += ["", "iterate: peak traced memory while streaming (tracemalloc, MiB)"]
    for c in contenders:
        it = results.get(c, {}).get("iterate")
        if it and "peak_bytes_full" in it:
            q, f = it["peak_bytes_quarter"] / 2**20, it["peak_bytes_full"] / 2**20
            lines.append(f"  {c:<11} {it['peak_rows_quarter']:>9,} rows: {q:7.2f}   "
                         f"{it['peak_rows_quarter'] * 4:>9,} rows: {f:7.2f}")

    targets: list[dict[str, Any]] = []
    if "registers" in results:
        lines += ["", "SPEC P2 targets for registers (ratio to the floor by the "
                  f"{clock} clock, and faster than each peer)"]
        for key, title, _unit in WORKLOADS:
            reg = results["registers"].get(key)
            if reg is None:
                continue
            need = P2_TARGETS.get(key)
            ratio = ratios.get(key, {}).get("registers")
            ratio_ok = None if need is None or ratio is None else ratio >= need
            floor = results.get("floor", {}).get(key)
            other = "wall" if clock == "cpu" else "cpu"
            other_ratio = (reg[f"{other}_ops_per_s"] / floor[f"{other}_ops_per_s"]
                           if floor else None)
            beats = {p: reg["ops_per_s"] > results[p][key]["ops_per_s"]
                     for p in PEERS if key in results.get(p, {})}
            entry = {"workload": key, "target_ratio": need, "ratio": ratio,
                     f"{other}_ratio": other_ratio,
                     "ratio_holds": ratio_ok, "beats": beats, "in_spec": need is not None}
            targets.append(entry)
            want = f">= {need:.1f}x" if need is not None else "(no target)"
            got = f"{ratio:.2f}x" if ratio is not None else "-"
            mark = {True: "HOLDS", False: "MISSES", None: ""}[ratio_ok]
            beat = " ".join(f"{p}:{'yes' if ok else 'NO'}" for p, ok in beats.items())
            alt = f"({other} {other_ratio:.2f}x)" if other_ratio is not None else ""
            lines.append(f"  {title:<14}{want:<12}{got:>7} {alt:<15}{mark:<7} beats {beat}")
        it = results["registers"].get("iterate", {})
        if "peak_bytes_full" in it:
            flat = it["peak_bytes_full"] <= 1.5 * it["peak_bytes_quarter"] + 2**20
            lines.append(f"  P3 iterate memory flat (4x rows -> peak within 1.5x + 1 MiB): "
                         f"{'HOLDS' if flat else 'MISSES'}")
            targets.append({"workload": "iterate_memory_flat", "ratio_holds": flat})
    return "\n".join(lines), {"ratios": ratios, "targets": targets}


def merge_rounds(rounds: list[dict[str, dict[str, Any]]], clock: str) -> dict[str, dict[str, Any]]:
    """Pool the samples of every round; rates come from the median sample."""
    merged: dict[str, dict[str, Any]] = {}
    for one in rounds:
        for key, r in one.items():
            m = merged.setdefault(key, {"ops": r["ops"], "wall_s": [], "cpu_s": []})
            m["wall_s"] += r["wall_s"]
            m["cpu_s"] += r["cpu_s"]
            for extra, value in r.items():
                if extra.startswith("peak_"):
                    m[extra] = value
    for m in merged.values():
        m["median_wall_s"] = statistics.median(m["wall_s"])
        m["median_cpu_s"] = statistics.median(m["cpu_s"])
        m["wall_ops_per_s"] = m["ops"] / m["median_wall_s"]
        m["cpu_ops_per_s"] = m["ops"] / max(m["median_cpu_s"], 1e-9)
        m["ops_per_s"] = m[f"{clock}_ops_per_s"]
    return merged


def run_all(args: argparse.Namespace, contenders: list[str]) -> int:
    sizes = Sizes(args.rows)
    rounds: dict[str, list[dict[str, Any]]] = {c: [] for c in contenders}
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="registers-bench-") as tmp:
        # Rounds interleave the contenders, so a noisy moment on the machine hits all alike.
        for round_no in range(args.rounds):
            for name in contenders:
                out = Path(tmp) / f"{name}-{round_no}.json"
                cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", name,
                       "--rows", str(args.rows), "--round", str(round_no),
                       "--dir", tmp, "--out", str(out)]
                if args.profile:
                    cmd += ["--profile", str(Path(args.profile).resolve())]
                t0 = time.perf_counter()
                print(f"round {round_no + 1}/{args.rounds}: {name} ...", end=" ", flush=True,
                      file=sys.stderr)
                proc = subprocess.run(cmd, cwd=tmp)
                if proc.returncode != 0:
                    print(f"FAILED (exit {proc.returncode})", file=sys.stderr)
                    return proc.returncode
                print(f"{time.perf_counter() - t0:.1f}s", file=sys.stderr)
                rounds[name].append(json.loads(out.read_text()))
                for db_file in Path(tmp).glob(f"{name}-{round_no}.db*"):
                    db_file.unlink()
    results = {name: merge_rounds(rounds[name], args.clock) for name in contenders}
    text, summary = report(results, contenders, args.clock)
    info = {"machine": machine(), "versions": versions()}
    header = (
        f"registers db benchmark: file SQLite (WAL, synchronous=NORMAL, foreign_keys=ON); "
        f"rows={args.rows:,}, rounds={args.rounds}, clock={args.clock}\n"
        f"machine: {info['machine']['cpu']}, {info['machine']['nproc']} cores, "
        f"load average at end {os.getloadavg()[0]:.2f}\n"
        + ", ".join(f"{k} {v}" for k, v in info["versions"].items())
        + f"\nsizes: {sizes.as_dict()}\n"
    )
    print("\n" + header)
    print(text)
    print(f"\ntotal wall time {time.perf_counter() - started:.0f}s")
    payload = {**info, "config": {"rows": args.rows, "rounds": args.rounds,
                                  "quick": args.quick, "clock": args.clock,
                                  "sizes": sizes.as_dict(),
                                  "pragmas": list(PRAGMAS)},
               "results": results, **summary, "table": header + "\n" + text}
    json_path = Path(args.json)
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(payload, indent=2))
    print(f"wrote {json_path}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: 5,000 rows, one round")
    parser.add_argument("--rows", type=int, default=None,
                        help="bulk insert size N; every other workload scales with it "
                             "(default 50,000; 5,000 with --quick)")
    parser.add_argument("--rounds", type=int, default=None,
                        help="rounds over all contenders; the median sample is reported "
                             "(default 3; 1 with --quick)")
    parser.add_argument("--contenders", default=",".join(CONTENDERS),
                        help=f"comma-separated subset of {','.join(CONTENDERS)}")
    parser.add_argument("--clock", choices=("cpu", "wall"), default="cpu",
                        help="rate by the benchmark process's CPU time (default: robust on a "
                             "shared machine) or by wall-clock time; both are recorded")
    parser.add_argument("--json", default=str(DEFAULT_JSON), help="where to write results")
    parser.add_argument("--profile", default=None, metavar="DIR",
                        help="also cProfile each workload into DIR/<contender>-<workload>.pstats "
                             "(timings are then inflated)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--round", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--dir", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.rows is None:
        args.rows = 5_000 if args.quick else 50_000
    if args.rounds is None:
        args.rounds = 1 if args.quick else 3
    if args.rows < 500:
        parser.error("--rows must be at least 500")
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    if args.worker:
        profile_dir = Path(args.profile) if args.profile else None
        if profile_dir is not None:
            profile_dir.mkdir(parents=True, exist_ok=True)
        results = run_worker(args.worker, Sizes(args.rows), Path(args.dir), args.round,
                             profile_dir)
        Path(args.out).write_text(json.dumps(results))
        return 0
    contenders = [c.strip() for c in args.contenders.split(",") if c.strip()]
    unknown = [c for c in contenders if c not in CONTENDER_CLASSES]
    if unknown:
        parser.error(f"unknown contender(s): {', '.join(unknown)}")
    return run_all(args, contenders)


if __name__ == "__main__":
    sys.exit(main())
