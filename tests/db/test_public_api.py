"""SPEC §0: the public surface of registers.db and the original module layout."""

import importlib

import pytest

SPEC_EXPORTS = [
    "database_registry",
    "DatabaseRegistry",
    "db_field",
    "HasMany",
    "BelongsTo",
    "HasManyThrough",
    "SchemaManager",
    "RegistryConfig",
    "get_engine",
    "dispose_engine",
    "dispose_all",
    "hash_password",
    "verify_password",
    "is_password_hash",
]

LEAD_EXPORTS = ["F", "prefetch", "metadata_for"]

EXCEPTIONS = [
    "RegistryError",
    "ConfigurationError",
    "ModelRegistrationError",
    "SchemaError",
    "MigrationError",
    "RelationshipError",
    "DuplicateKeyError",
    "InvalidPrimaryKeyAssignmentError",
    "ImmutableFieldError",
    "UniqueConstraintError",
    "RecordNotFoundError",
    "InvalidQueryError",
]

# Where each public name lives ("each public name lives where its module name says").
HOME_MODULE = {
    "database_registry": "decorators",
    "DatabaseRegistry": "registry",
    "db_field": "fields",
    "HasMany": "relations",
    "BelongsTo": "relations",
    "HasManyThrough": "relations",
    "prefetch": "relations",
    "SchemaManager": "schema",
    "RegistryConfig": "metadata",
    "get_engine": "engine",
    "dispose_engine": "engine",
    "dispose_all": "engine",
    "hash_password": "security",
    "verify_password": "security",
    "is_password_hash": "security",
    **{name: "exceptions" for name in EXCEPTIONS},
}

ORIGINAL_MODULES = [
    "decorators",
    "engine",
    "exceptions",
    "fields",
    "metadata",
    "registry",
    "relations",
    "schema",
    "security",
    "typing_utils",
]


@pytest.mark.parametrize("name", SPEC_EXPORTS + LEAD_EXPORTS + EXCEPTIONS)
def test_registers_db_exports_name_in_dunder_all(name: str) -> None:
    import registers.db

    assert hasattr(registers.db, name)
    assert name in registers.db.__all__


@pytest.mark.parametrize("module", ORIGINAL_MODULES)
def test_original_module_layout_stays_importable(module: str) -> None:
    importlib.import_module(f"registers.db.{module}")


@pytest.mark.parametrize(("name", "module"), sorted(HOME_MODULE.items()))
def test_public_name_is_the_object_defined_in_its_home_module(name: str, module: str) -> None:
    import registers.db

    home = importlib.import_module(f"registers.db.{module}")
    assert getattr(home, name) is getattr(registers.db, name)


def test_import_registers_does_not_import_the_db_half() -> None:
    import subprocess
    import sys

    code = (
        "import sys, registers; print('registers.db' in sys.modules, 'sqlalchemy' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
