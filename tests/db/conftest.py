"""Fixtures shared by the registers.db tests.

Models are declared inside fixtures or tests because each test gets its own database
(``database_url`` from ``tests/conftest.py``); table names can therefore be fixed.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager

import pytest

from ._helpers import RawSQL, StatementLog, count_statements_on


@pytest.fixture
def count_statements() -> Callable[[str], AbstractContextManager[StatementLog]]:
    """``with count_statements(url) as log:`` records every statement sent to ``url``."""
    return count_statements_on


@pytest.fixture
def raw(database_url: str) -> RawSQL:
    """Raw SQL access to this test's database."""
    return RawSQL(database_url)
