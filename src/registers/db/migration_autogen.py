"""Autogenerate for registers' tables: drops before creates, back-fills for new NOT NULL
columns with a default, CHECK constraints compared by registers' ``ck_`` names, and
one-line descriptions of differences (``registers db check``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

if TYPE_CHECKING:
    pass

# --- autogenerate ---------------------------------------------------------------------


def _process_revision_directives(context: Any, revision: Any, directives: list[Any]) -> None:
    if not directives:
        return
    script = directives[0]
    config = context.config
    action = config.attributes.get("registers.action", "") if config is not None else ""
    if action == "check":
        return
    if action == "revision" and not config.attributes.get("registers.empty", False) and all(
        ops.is_empty() for ops in script.upgrade_ops_list
    ):
        directives[:] = []
        return
    dialect = context.dialect
    for upgrade_ops in script.upgrade_ops_list:
        _add_back_fills(upgrade_ops, dialect, context.opts.get("target_metadata"))
    for ops_list in (script.upgrade_ops_list, script.downgrade_ops_list):
        for container in ops_list:
            _drops_first(container)


def _drops_first(container: Any) -> None:
    """In each table's changes: drop indexes and constraints, change columns, then create.

    Autogenerate lists column changes first; MariaDB then refuses to turn an indexed
    VARCHAR into LONGTEXT while the index is still there, or to index a LONGTEXT column
    before it became a VARCHAR.
    """
    from alembic.operations import ops

    for group in container.ops:
        if isinstance(group, ops.ModifyTableOps):
            drops: list[Any] = [op for op in group.ops
                                if isinstance(op, (ops.DropIndexOp, ops.DropConstraintOp))]
            creates: list[Any] = [op for op in group.ops
                                  if isinstance(op, (ops.CreateIndexOp, ops.AddConstraintOp))]
            columns: list[Any] = [op for op in group.ops
                                  if op not in drops and op not in creates]
            group.ops = drops + columns + creates


def _add_back_fills(upgrade_ops: Any, dialect: Any, metadata: Any) -> None:
    """Back-fills from the model's defaults.

    A new NOT NULL column whose field has a default is added with that DEFAULT, so the
    existing rows get the value, and the DEFAULT is dropped again in a step of its own (the
    table keeps matching the model; on SQLite a batch rebuild in between keeps it). A
    column becoming NOT NULL first gets the default in its NULL rows.
    """
    from alembic.operations import ops

    result: list[Any] = []
    quote = dialect.identifier_preparer.quote
    for group in upgrade_ops.ops:
        if not isinstance(group, ops.ModifyTableOps):
            result.append(group)
            continue
        for op in group.ops:
            # NULL -> NOT NULL: the rows still NULL get the field's default first.
            if (isinstance(op, ops.AlterColumnOp) and op.modify_nullable is False
                    and op.existing_nullable):
                column = metadata.tables[group.table_name].columns.get(op.column_name) \
                    if metadata is not None and group.table_name in metadata.tables else None
                literal = None if column is None else _default_literal(
                    metadata, group.table_name, column, dialect)
                if literal is not None:
                    name = quote(op.column_name)
                    result.append(ops.ExecuteSQLOp(
                        f"UPDATE {quote(group.table_name)} SET {name} = {literal} "
                        f"WHERE {name} IS NULL"
                    ))
        result.append(group)
        drops: list[Any] = []
        for index, op in enumerate(group.ops):
            if not isinstance(op, ops.AddColumnOp):
                continue
            column = op.column
            if column.nullable or column.server_default is not None:
                continue
            literal = _default_literal(metadata, group.table_name, column, dialect)
            if literal is None:
                continue
            filled = column._copy()
            filled.server_default = sa.DefaultClause(sa.text(literal))
            group.ops[index] = ops.AddColumnOp(op.table_name, filled, schema=op.schema)
            drops.append(
                ops.AlterColumnOp(
                    op.table_name,
                    column.name,
                    schema=op.schema,
                    existing_type=column.type,
                    existing_nullable=False,
                    existing_server_default=filled.server_default,
                    modify_server_default=None,
                )
            )
        if drops:
            result.append(ops.ModifyTableOps(group.table_name, drops, schema=group.schema))
    upgrade_ops.ops = result


_CHECK_COMPARATOR: list[Any] = []


def _install_check_comparator() -> None:
    """Teach autogenerate registers' CHECK constraints (Alembic compares none by default).

    Compared by name, for the names registers derives (``ck_<table>_<field>``): a CHECK
    declared in a model and missing in the database is added, one registers named that the
    model no longer declares is dropped. A changed condition under the same name is not
    seen (databases rewrite the SQL text): write that drop and create in the script. Runs
    only in environments configured by :func:`run_env`.
    """
    if _CHECK_COMPARATOR:
        return
    from alembic.autogenerate import comparators

    _CHECK_COMPARATOR.append(comparators.dispatch_for("table")(_compare_checks))


def _compare_checks(
    autogen_context: Any, modify_ops: Any, schema: Any, table_name: str,
    conn_table: Any, metadata_table: Any,
) -> None:
    from alembic.operations import ops

    context = autogen_context.migration_context
    if context is None or not context.opts.get("registers_compare_checks"):
        return
    if conn_table is None or metadata_table is None:  # new or dropped table: CREATE/DROP
        return
    declared = {
        c.name: c for c in metadata_table.constraints
        if isinstance(c, sa.CheckConstraint) and isinstance(c.name, str)
    }
    try:
        live = {
            c["name"]: c for c in autogen_context.inspector.get_check_constraints(
                table_name, schema=schema)
            if c.get("name")
        }
    except NotImplementedError:
        return
    for name in sorted(set(declared) - set(live)):
        modify_ops.ops.append(ops.AddConstraintOp.from_constraint(declared[name]))
    for name in sorted(set(live) - set(declared)):
        if not name.startswith("ck_"):
            continue  # not a name registers derives (MariaDB's JSON checks, the user's own)
        existing = sa.CheckConstraint(sa.text(live[name]["sqltext"]), name=name,
                                      table=conn_table)
        modify_ops.ops.append(ops.DropConstraintOp.from_constraint(existing))


def _default_literal(metadata: Any, table: str, column: Any, dialect: Any) -> str | None:
    """The model field's default as a SQL literal for ``dialect``, if it has a plain one."""
    from pydantic_core import PydanticUndefined

    manager = _manager_of(metadata, table)
    if manager is None:
        return None
    field = manager.model.model_fields.get(column.name)
    if field is None or field.default_factory is not None:
        return None
    value = field.default
    if value is PydanticUndefined or value is None:
        return None
    family = "mysql" if dialect.name in ("mysql", "mariadb") else dialect.name
    spec = next((c for c in manager.config.columns if c.name == column.name), None)
    codec = spec.to_db(family) if spec is not None else None
    try:
        stored = codec(value) if codec is not None else value
        if isinstance(stored, bool) and family != "postgresql":
            stored = int(stored)
        if not isinstance(stored, (str, int, float)) and type(stored).__name__ != "Decimal":
            return None
        expression = sa.literal(stored)
        return str(expression.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))
    except Exception:
        return None


def _manager_of(metadata: Any, table: str) -> Any:
    from pydantic import BaseModel

    from registers.db.registry import DatabaseRegistry

    target = metadata.tables.get(table) if metadata is not None else None
    best = None
    stack: list[type[Any]] = list(BaseModel.__subclasses__())
    while stack:
        cls = stack.pop()
        stack.extend(cls.__subclasses__())
        for value in list(vars(cls).values()):
            if not isinstance(value, DatabaseRegistry) or value.model is not cls:
                continue
            if value.table is target:
                return value
            if value.table_name == table:
                best = value
    return best


def _describe(diff: Any) -> str:
    """One autogenerate difference as a line (``add column items.unit``)."""
    if isinstance(diff, list):
        return "; ".join(_describe(d) for d in diff)
    kind = str(diff[0])
    words = kind.replace("_", " ")
    if kind in ("add_table", "remove_table"):
        return f"{words} {diff[1].name}"
    if kind in ("add_column", "remove_column"):
        return f"{words} {diff[2]}.{diff[3].name}"
    if kind.startswith("modify_"):
        table, column, old, new = diff[2], diff[3], diff[5], diff[6]
        return f"{words} {table}.{column}: {_show(old)} -> {_show(new)}"
    item = diff[1]
    table = getattr(getattr(item, "table", None), "name", None) or getattr(item, "name", "")
    name = getattr(item, "name", None)
    columns = ", ".join(c.name for c in getattr(item, "columns", ())) if hasattr(
        item, "columns") else ""
    label = f"{name} " if name else ""
    return f"{words} {label}on {table} ({columns})" if columns else f"{words} {label}{table}"


def _show(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, sa.types.TypeEngine):
        return repr(value)
    if hasattr(value, "arg"):
        return str(getattr(value.arg, "text", value.arg))
    return str(value)
