"""registers: decorator-driven CLI tooling and database persistence for typed Python.

The two halves are independent and imported on demand, so ``import registers`` stays
cheap (it imports neither pydantic nor SQLAlchemy)::

    from registers.cli import CommandRegistry
    from registers.db import database_registry
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
