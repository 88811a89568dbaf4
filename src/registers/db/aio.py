"""The async API's helpers: ``adispose_all``, ``get_async_engine``, ``async_url``.

Importing this module imports the async machinery (:mod:`registers.db.async_engine`,
:mod:`registers.db.async_direct`); ``import registers.db`` and decorating a model do not, a
database's first async call does. The manager's async methods (``aget``, ``acreate``, ...)
are :class:`~registers.db.async_ops.AsyncOperations`, re-exported here.
"""

from __future__ import annotations

from registers.db.async_engine import adispose_all, async_url, get_async_engine
from registers.db.async_ops import AsyncOperations

__all__ = ["AsyncOperations", "adispose_all", "async_url", "get_async_engine"]
