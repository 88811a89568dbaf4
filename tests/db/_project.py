"""A throwaway project on disk for the migrations tests: models module, console script runs."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import sqlalchemy as sa

REGISTERS = Path(sys.executable).with_name("registers")
SRC = Path(__file__).resolve().parents[2] / "src"


class Project:
    """``tmp/app/models.py`` and the ``registers`` console script run inside ``tmp``."""

    def __init__(self, root: Path, url: str, package: str = "app") -> None:
        self.root = root
        self.url = url
        self.package = package
        (root / package).mkdir(parents=True, exist_ok=True)
        (root / package / "__init__.py").write_text("", encoding="utf-8")

    @property
    def module(self) -> str:
        return f"{self.package}.models"

    def models(self, body: str) -> None:
        """Write the models module; ``URL`` in it is this project's database URL."""
        header = (
            "from __future__ import annotations\n\n"
            "from pydantic import BaseModel\n\n"
            "from registers.db import database_registry, db_field\n\n"
            f"URL = {self.url!r}\n\n"
        )
        path = self.root / self.package / "models.py"
        path.write_text(header + textwrap.dedent(body), encoding="utf-8")
        for cached in self.root.rglob("__pycache__"):
            for item in cached.iterdir():
                item.unlink()

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SRC), env.get("PYTHONPATH")]))
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        return env

    def run(self, *args: str, expect: int | None = 0) -> subprocess.CompletedProcess[str]:
        """``registers ARGS`` in the project folder; asserts the exit status."""
        done = subprocess.run(
            [str(REGISTERS), *args], cwd=self.root, capture_output=True, text=True,
            env=self.env(), timeout=300,
        )
        if expect is not None:
            assert done.returncode == expect, (args, done.returncode, done.stdout, done.stderr)
        return done

    def python(self, code: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-c", textwrap.dedent(code)], cwd=self.root, capture_output=True,
            text=True, env=self.env(), timeout=300,
        )

    def scripts(self) -> list[Path]:
        return sorted((self.root / "migrations" / "versions").glob("*.py"),
                      key=lambda p: p.stat().st_mtime_ns)

    # --- looking at the database without registers ----------------------------------

    def engine(self) -> sa.Engine:
        engine = sa.create_engine(_absolute(self.url, self.root), poolclass=sa.pool.NullPool)
        if engine.dialect.name == "sqlite":  # enforce foreign keys, as registers does

            @sa.event.listens_for(engine, "connect")
            def _fk_on(dbapi_connection: Any, record: Any) -> None:
                dbapi_connection.execute("PRAGMA foreign_keys = ON")

        return engine

    def tables(self) -> set[str]:
        engine = self.engine()
        try:
            with engine.connect() as conn:
                return set(sa.inspect(conn).get_table_names())
        finally:
            engine.dispose()

    def columns(self, table: str) -> dict[str, dict[str, Any]]:
        engine = self.engine()
        try:
            with engine.connect() as conn:
                return {c["name"]: c for c in sa.inspect(conn).get_columns(table)}
        finally:
            engine.dispose()

    def execute(self, sql: str, **params: Any) -> list[Any]:
        engine = self.engine()
        try:
            with engine.begin() as conn:
                result = conn.execute(sa.text(sql), params)
                return list(result) if result.returns_rows else []
        finally:
            engine.dispose()


def _absolute(url: str, root: Path) -> str:
    parsed = sa.make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database and not os.path.isabs(
        parsed.database
    ):
        return parsed.set(database=str(root / parsed.database)).render_as_string(False)
    return url
