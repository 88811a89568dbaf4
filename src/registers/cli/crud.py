"""``crud()``: create, list, get, update and delete commands for a registered model (B2).

Used through :meth:`CommandRegistry.crud <registers.cli.registry.CommandRegistry.crud>`,
which imports this module only when called: it imports pydantic and ``registers.db``, which
``import registers.cli`` never does (P1).

Each command is an ordinary registered command whose handler carries a generated
``__signature__``, so the usual reflection turns the model's fields into arguments:

- ``create --name Ada --email a@x``: every field is an option (the database-managed key is
  left out); required fields are checked before any SQL and reported like argparse does.
- ``list [--FIELD VALUE]... [--limit N] [--offset N] [--order-by FIELD[,-FIELD]]``:
  equality filters, ordered by key unless ``--order-by`` says otherwise.
- ``get KEY`` / ``delete KEY``: the key is positional; ``delete`` prints the deleted record.
- ``update KEY [--FIELD VALUE]... [--unset FIELD...]``: only the given fields change;
  ``--unset`` sets nullable fields to null.

Records are printed as JSON without password fields (neither plain text nor hash).
Password fields are never options (they would land in shell history): ``create`` asks for
them at a hidden, confirmed prompt, and ``update --change-password`` asks for the new one;
they are hashed by ``registers.db`` on write. Without a terminal a required password is a
usage error (``invoke(input=...)`` feeds the prompt in tests). Fields the command line
cannot express directly (``dict``, nested models, lists of objects) take JSON text. A
``bool`` field is ``--flag`` / ``--no-flag``.

Errors are one line each on stderr, prefixed like argparse's (``app users get: error:``):
pydantic validation errors (one line per error) and ``InvalidQueryError`` exit with status
2; ``RecordNotFoundError``, constraint violations and other ``registers.db`` errors with 1.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable, Iterable, Mapping
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ValidationError

from registers.db.exceptions import InvalidQueryError, RecordNotFoundError, RegistryError
from registers.db.registry import DatabaseRegistry
from registers.db.typing_utils import ColumnSpec, is_model_class

from .exceptions import CommandError, RegistrationError
from .params import Prompt
from .signature import option_name
from .utils.typing import UnsupportedAnnotation, classify

TYPE_CHECKING = False
if TYPE_CHECKING:
    from .registry import CommandRegistry

__all__ = ["COMMANDS", "register_crud"]

COMMANDS = ("create", "list", "get", "update", "delete")

# list's own options and update's --unset; a field of the same name gets no option there
_LIST_OPTIONS = ("limit", "offset", "order_by")
_UNSET = "unset"
_KEYWORD = inspect.Parameter.KEYWORD_ONLY


class _Field:
    """One model field as the command line sees it."""

    __slots__ = ("annotation", "default", "description", "filterable", "hashed", "is_json",
                 "name", "nullable", "required")

    def __init__(self, column: ColumnSpec, model: type[BaseModel]) -> None:
        info = model.model_fields[column.name]
        self.name = column.name
        self.annotation, self.is_json = _cli_type(column)
        self.hashed = column.hashed
        # equality on a hash or a JSON document is no useful filter
        self.filterable = not (column.hashed or column.kind == "json")
        self.nullable = column.nullable and not column.primary_key
        self.required = info.is_required()
        plain_default = not self.required and info.default_factory is None
        self.default = info.default if plain_default and not self.is_json else None
        self.description = info.description or ""

    @property
    def option(self) -> str:
        return option_name(self.name)

    def help(self, *notes: str) -> str:
        extra = [n for n in notes if n]
        if self.is_json:
            extra.append("JSON text")
        if self.hashed:
            extra.append("stored hashed, never printed")
        text = self.description
        return f"{text} [{', '.join(extra)}]" if extra and text else text or ", ".join(extra)

    def parameter(self, help_text: str, default: Any = None) -> inspect.Parameter:
        """A keyword-only option; ``None`` (not given) is always allowed."""
        return inspect.Parameter(self.name, _KEYWORD, default=default,
                                 annotation=Annotated[self.annotation | None, help_text])

    @property
    def label(self) -> str:
        """The field as a prompt names it: ``"Password"`` for ``password``."""
        return self.name.replace("_", " ").capitalize()

    def prompted(self) -> inspect.Parameter:
        """A password field: asked at a hidden, confirmed prompt, never an option."""
        prompt = Prompt(self.label if self.required else f"{self.label} (empty for none)",
                        hide_input=True, confirm=True, option=False)
        default = inspect.Parameter.empty if self.required else None
        return inspect.Parameter(self.name, _KEYWORD, default=default,
                                 annotation=Annotated[self.annotation, prompt])

    @property
    def change_flag(self) -> str:
        """``update``'s flag asking for a new value of this password field."""
        return "change_" + self.name


def _cli_type(column: ColumnSpec) -> tuple[Any, bool]:
    """``(annotation for the command line, whether the text is parsed as JSON)``."""
    try:
        kind = classify(column.python_type).kind
    except UnsupportedAnnotation:
        kind = "unsupported"
    if kind in ("value", "flag", "many"):
        return column.python_type, False
    # EmailStr, HttpUrl...: pass the text on and let pydantic validate it
    return str, column.kind == "json"


def find_manager(model: Any) -> DatabaseRegistry[Any]:
    """The manager of a model registered with ``@database_registry`` (or a manager itself).

    Raises:
        RegistrationError: ``model`` is neither.
    """
    if isinstance(model, DatabaseRegistry):
        return model
    if is_model_class(model):
        for base in model.__mro__:
            for value in vars(base).values():
                if isinstance(value, DatabaseRegistry) and value.model is model:
                    return value
    name = getattr(model, "__name__", repr(model))
    raise RegistrationError(
        f"Cannot register CRUD commands for {name}: it is not a model registered with "
        "@database_registry (or a DatabaseRegistry)."
    )


class _InputError(Exception):
    """Command-line input the handler rejects itself (missing option, bad JSON)."""


class _Command:
    """A handler with a generated signature; turns model and database errors into one-liners.

    ``registers.cli`` reads ``__signature__`` (through :func:`inspect.signature`) to plan
    the arguments, exactly as for a hand-written function.
    """

    def __init__(self, run: Callable[[dict[str, Any]], Any], params: list[inspect.Parameter],
                 doc: str, options: Mapping[str, str]) -> None:
        self._run = run
        self._options = options  # field name or alias -> "--option" / "argument name"
        self.__signature__ = inspect.Signature(params)
        self.__doc__ = doc

    def __call__(self, **kwargs: Any) -> Any:
        # run() prefixes each line with the program and the command path of the run, so
        # the message is right wherever these commands were merged
        try:
            return self._run(kwargs)
        except ValidationError as exc:
            raise CommandError(*self._validation_lines(exc), exit_code=2) from exc
        except InvalidQueryError as exc:
            raise CommandError(exc.message, exit_code=2) from exc
        except RegistryError as exc:
            raise CommandError(exc.message) from exc
        except _InputError as exc:
            raise CommandError(str(exc), exit_code=2) from exc

    def _validation_lines(self, exc: ValidationError) -> list[str]:
        lines: list[str] = []
        for error in exc.errors(include_url=False, include_input=False):
            loc = [str(part) for part in error["loc"]]
            if not loc:
                lines.append(error["msg"])
                continue
            where = self._options.get(loc[0], loc[0])
            where += "".join(f"[{part}]" for part in loc[1:])
            lines.append(f"argument {where}: {error['msg']}")
        return lines or [str(exc).splitlines()[0]]



class _Crud:
    """The five commands of one model, sharing its manager and field plan."""

    def __init__(self, manager: DatabaseRegistry[Any]) -> None:
        self.manager = manager
        self.model = manager.model
        self.fields = [_Field(c, self.model) for c in manager.config.columns]
        self.key = next(f for f in self.fields if f.name == manager.key)
        self.values = [f for f in self.fields if f is not self.key]
        self.hidden = {f.name for f in self.fields if f.hashed}
        self.options = self._option_names()

    def _option_names(self) -> dict[str, str]:
        names: dict[str, str] = {}
        for name, info in self.model.model_fields.items():
            spelling = self.key.name if name == self.key.name else option_name(name)
            names[name] = spelling
            for alias in (info.alias, info.validation_alias):
                if isinstance(alias, str):
                    names[alias] = spelling
        return names

    # -- shared helpers -----------------------------------------------------------------

    def show(self, record: BaseModel) -> dict[str, Any]:
        data: dict[str, Any] = record.model_dump(mode="json", exclude=self.hidden)
        return data

    def given(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """The options the user gave (``None`` means "not given"), JSON fields decoded."""
        data: dict[str, Any] = {}
        by_name = {f.name: f for f in self.fields}
        for name, value in values.items():
            if value is None:
                continue
            field = by_name[name]
            data[name] = _decode(field, value) if field.is_json else value
        return data

    def key_parameter(self) -> inspect.Parameter:
        return inspect.Parameter(
            self.key.name, inspect.Parameter.POSITIONAL_OR_KEYWORD,
            annotation=Annotated[self.key.annotation, f"The {self.model.__name__}'s key"],
        )

    def command(self, name: str) -> _Command:
        build: Callable[[], _Command] = getattr(self, f"_{name}")
        return build()

    # -- the commands -------------------------------------------------------------------

    def _create(self) -> _Command:
        writable = [f for f in self.fields
                    if not (f is self.key and self.manager.managed_key)]
        params = [f.prompted() if f.hashed else
                  f.parameter(f.help("required" if f.required else ""), f.default)
                  for f in writable]
        asked = [f.name for f in writable if f.hashed]
        doc = f"Create a {self.model.__name__} and print it."
        if asked:
            doc += (f" Asks for {', '.join(asked)} at a hidden prompt (stored hashed, never "
                    "printed).")

        def run(values: dict[str, Any]) -> Any:
            data = self.given(values)
            missing = [f.option for f in writable if f.required and f.name not in data]
            if missing:
                raise _InputError(
                    f"the following arguments are required: {', '.join(missing)}"
                )
            return self.show(self.manager.create(**data))

        return _Command(run, params, doc, self.options)

    def _list(self) -> _Command:
        filters = [f for f in self.fields if f.filterable and f.name not in _LIST_OPTIONS]
        params = [f.parameter(f.help("equals")) for f in filters]
        params += [
            inspect.Parameter("limit", _KEYWORD, default=None,
                              annotation=Annotated[int | None, "At most N records"]),
            inspect.Parameter("offset", _KEYWORD, default=None,
                              annotation=Annotated[int | None, "Skip N records"]),
            inspect.Parameter("order_by", _KEYWORD, default=None, annotation=Annotated[
                str | None, "Sort fields, comma-separated; --order-by=-FIELD for descending"]),
        ]

        def run(values: dict[str, Any]) -> Any:
            limit, offset = values.pop("limit"), values.pop("offset")
            order = values.pop("order_by")
            order_by = [o.strip() for o in order.split(",")] if order else self.key.name
            criteria = self.given(values)
            found = self.manager.filter(limit=limit, offset=offset, order_by=order_by,
                                        **criteria)
            return [self.show(record) for record in found]

        return _Command(run, params, f"List {self.model.__name__} records as JSON.",
                        self.options)

    def _get(self) -> _Command:
        def run(values: dict[str, Any]) -> Any:
            return self.show(self.manager.require(values[self.key.name]))

        return _Command(run, [self.key_parameter()],
                        f"Print one {self.model.__name__} by key.", self.options)

    def _delete(self) -> _Command:
        def run(values: dict[str, Any]) -> Any:
            key = values[self.key.name]
            with self.manager.transaction():
                record = self.manager.require(key)
                self.manager.delete(key)
            return self.show(record)

        return _Command(run, [self.key_parameter()],
                        f"Delete one {self.model.__name__} by key and print it.", self.options)

    def _update(self) -> _Command:
        params = [self.key_parameter()]
        params += [f.parameter(f.help()) for f in self.values if not f.hashed]
        secrets = [f for f in self.values if f.hashed]
        for field in secrets:
            if field.change_flag in self.model.model_fields:
                raise RegistrationError(
                    f"Cannot register CRUD commands for {self.model.__name__}: field "
                    f"'{field.change_flag}' takes the name of the flag that changes "
                    f"'{field.name}'."
                )
            params.append(inspect.Parameter(field.change_flag, _KEYWORD, default=False,
                                            annotation=Annotated[bool, (
                                                f"Ask for a new {field.name} (hidden, "
                                                "confirmed; stored hashed, never printed)")]))
        nullable = tuple(f.name for f in self.values if f.nullable)
        if nullable and _UNSET not in self.model.model_fields:
            choices = Literal.__getitem__(nullable)
            params.append(inspect.Parameter(_UNSET, _KEYWORD, default=None, annotation=Annotated[
                list[choices] | None, "Set these fields to null"]))  # type: ignore[valid-type]

        def run(values: dict[str, Any]) -> Any:
            key = values.pop(self.key.name)
            cleared = values.pop(_UNSET, None) or []
            asked = {f.name: self._ask_new(f) for f in secrets if values.pop(f.change_flag)}
            changes = self.given(values)
            changes.update(asked)
            changes.update(dict.fromkeys(cleared))
            if not changes:
                spellings = ", ".join(
                    "--" + (f.change_flag if f.hashed else f.name).replace("_", "-")
                    for f in self.values)
                raise _InputError(f"nothing to update: give at least one of {spellings}")
            return self.show(self._apply(key, changes))

        return _Command(run, params,
                        f"Change fields of one {self.model.__name__} and print it.",
                        self.options)

    def _ask_new(self, field: _Field) -> Any:
        from .terminal import ask, interactive

        flag = "--" + field.change_flag.replace("_", "-")
        if not interactive():
            raise _InputError(f"argument {flag}: no terminal to prompt on")
        return ask(f"New {field.name.replace('_', ' ')}", hide_input=True, confirm=True)

    def _apply(self, key: Any, changes: dict[str, Any]) -> BaseModel:
        """Validate ``changes`` against the whole model, then write them in one transaction."""
        with self.manager.transaction():
            current = self.manager.require(key)
            merged = {n: current.__dict__[n] for n in self.model.model_fields}
            merged.update(changes)
            checked = self.model.model_validate(
                {_input_key(self.model, n): v for n, v in merged.items()})
            updates = {n: getattr(checked, n) for n in changes}
            found = self.manager.update_where({self.key.name: key}, **updates)
        if not found:  # deleted between the read and the write
            raise RecordNotFoundError(f"no {self.model.__name__} with {self.key.name}={key!r}")
        record: BaseModel = found[0]
        return record


def _input_key(model: type[BaseModel], name: str) -> str:
    """The key validation expects for field ``name``: its alias unless names are accepted."""
    config = model.model_config
    if config.get("populate_by_name") or config.get("validate_by_name"):
        return name
    info = model.model_fields[name]
    alias = info.validation_alias if isinstance(info.validation_alias, str) else info.alias
    return alias if isinstance(alias, str) else name


def _decode(field: _Field, text: Any) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        raise _InputError(f"argument {field.option}: invalid JSON: {exc}") from exc


def _names(prefix: str | None, wanted: Iterable[str]) -> list[tuple[str, str]]:
    chosen = [wanted] if isinstance(wanted, str) else list(wanted)
    unknown = [c for c in chosen if c not in COMMANDS]
    if unknown:
        raise RegistrationError(
            f"Cannot register CRUD commands: unknown command {unknown[0]!r} "
            f"(choose from {', '.join(COMMANDS)})."
        )
    return [(c, f"{prefix}-{c}" if prefix else c) for c in COMMANDS if c in chosen]


def register_crud(
    registry: CommandRegistry,
    model: Any,
    *,
    group: str | None = None,
    prefix: str | None = None,
    commands: Iterable[str] = COMMANDS,
) -> CommandRegistry:
    """Register the CRUD commands of ``model`` on ``registry``; see ``CommandRegistry.crud``."""
    if group is not None and prefix is not None:
        raise RegistrationError("Cannot register CRUD commands: give group= or prefix=, not both.")
    manager = find_manager(model)
    names = _names(prefix, commands)
    target = registry
    if prefix is None:
        table = manager.table_name.replace("_", "-")
        target = registry.group(group or table,
                                description=f"Manage {manager.model_name} records "
                                            f"(table {manager.table_name}).")
    crud = _Crud(manager)
    for kind, name in names:
        handler = crud.command(kind)
        assert handler.__doc__ is not None
        target.add_command(handler, name, description=handler.__doc__)
    return target
