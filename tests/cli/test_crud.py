"""B2: ``cli.crud(Model)`` registers create/list/get/update/delete over a registered model."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import BaseModel, Field

from registers.cli import CommandRegistry
from registers.cli.exceptions import DuplicateCommandError, RegistrationError
from registers.cli.testing import InvokeResult
from registers.db import database_registry, db_field


def _user_model(url: str) -> Any:
    @database_registry(url, unique_fields=["email"])
    class User(BaseModel):
        id: int | None = None
        name: str = Field(max_length=20, description="Full name")
        email: str
        age: int = 0
        active: bool = True
        bio: str | None = None
        password: str | None = None
        meta: dict[str, int] = {}

    return User


@pytest.fixture
def user_model(database_url: str) -> Any:
    return _user_model(database_url)


@pytest.fixture
def app(user_model: Any) -> CommandRegistry:
    cli = CommandRegistry(prog="app")
    cli.crud(user_model)
    return cli


def ok(result: InvokeResult) -> Any:
    assert result.exit_code == 0, result.stderr
    assert result.stderr == ""
    return json.loads(result.stdout)


def error(result: InvokeResult, code: int) -> str:
    """The one stderr line of a failed run (no traceback, nothing on stdout).

    A usage error (status 2) is followed by the "Try '<prog> <command> --help'" line.
    """
    assert result.exit_code == code, (result.stdout, result.stderr)
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert "Traceback" not in result.stderr
    if code == 2:
        assert len(lines) == 2 and lines[1].startswith("Try '")
        assert lines[1].endswith(" --help' for help.")
    else:
        assert len(lines) == 1
    return lines[0]


def add(app: CommandRegistry, name: str, email: str, *extra: str) -> Any:
    return ok(app.invoke(["users", "create", "--name", name, "--email", email, *extra]))


# -- create ---------------------------------------------------------------------------------


def test_create_prints_the_new_record_with_its_generated_key(app: CommandRegistry) -> None:
    record = add(app, "Ada", "ada@x", "--age", "36", "--no-active", "--meta", '{"x": 1}')
    assert record == {"id": 1, "name": "Ada", "email": "ada@x", "age": 36, "active": False,
                      "bio": None, "meta": {"x": 1}}


def test_create_hashes_the_password_and_never_prints_it(
    app: CommandRegistry, user_model: Any
) -> None:
    result = app.invoke(["users", "create", "--name", "Ada", "--email", "a@x"],
                        input="s3cret\ns3cret\n")
    assert result.exit_code == 0, result.stderr
    assert "password" not in json.loads(result.stdout)
    assert "s3cret" not in result.stdout + result.stderr and "pbkdf2" not in result.stdout
    assert result.stderr == "Password (empty for none): \nRepeat for confirmation: \n"
    stored = user_model.objects.get(1)
    assert stored.password != "s3cret" and stored.verify_password("s3cret")


def test_create_never_takes_a_password_option(app: CommandRegistry) -> None:
    line = error(app.invoke(["users", "create", "--name", "Ada", "--email", "a@x",
                             "--password", "s3cret"]), 2)
    assert line == "app users create: error: unrecognized arguments: --password s3cret"


def test_create_without_a_terminal_leaves_an_optional_password_unset(
    app: CommandRegistry, user_model: Any
) -> None:
    add(app, "Ada", "a@x")
    assert user_model.objects.get(1).password is None


def test_create_empty_password_answer_means_none(app: CommandRegistry, user_model: Any) -> None:
    result = app.invoke("users create --name Ada --email a@x", input="\n")
    assert result.exit_code == 0, result.stderr
    assert user_model.objects.get(1).password is None


def test_create_password_mismatch_is_asked_again(app: CommandRegistry, user_model: Any) -> None:
    result = app.invoke("users create --name Ada --email a@x", input="one\ntwo\nok\nok\n")
    assert result.exit_code == 0, result.stderr
    assert "Error: the two entries do not match." in result.stderr
    assert user_model.objects.get(1).verify_password("ok")


def _account_model(url: str) -> Any:
    @database_registry(url, table_name="accounts")
    class Account(BaseModel):
        id: int | None = None
        login: str
        password: str

    return Account


def test_a_required_password_without_a_terminal_is_a_usage_error(sqlite_url: str) -> None:
    model = _account_model(sqlite_url)
    cli = CommandRegistry(prog="app")
    cli.crud(model)
    line = error(cli.invoke("accounts create --login ada"), 2)
    assert line == ("app accounts create: error: the following arguments are required: "
                    "--password (no terminal to prompt on)")
    assert model.objects.count() == 0


def test_a_required_password_is_asked_until_given(sqlite_url: str) -> None:
    model = _account_model(sqlite_url)
    cli = CommandRegistry(prog="app")
    cli.crud(model)
    result = cli.invoke("accounts create --login ada", input="\npw\npw\n")
    assert result.exit_code == 0, result.stderr
    assert result.stderr.startswith("Password: \nError: a value is required.\nPassword: ")
    assert model.objects.get(1).verify_password("pw")


def test_end_of_input_at_the_password_prompt_exits_1(sqlite_url: str) -> None:
    model = _account_model(sqlite_url)
    cli = CommandRegistry(prog="app")
    cli.crud(model)
    result = cli.invoke("accounts create --login ada", input="pw\n")
    assert result.exit_code == 1
    assert result.stderr.splitlines()[-1] == (
        "app accounts create: aborted: end of input at prompt 'Password'")
    assert "Traceback" not in result.stderr and model.objects.count() == 0


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--email", "a@x"], "the following arguments are required: --name"),
        ([], "the following arguments are required: --name, --email"),
        (["--name", "Ada", "--email", "a@x", "--age", "old"],
         "argument --age: invalid int value: 'old'"),
        (["--name", "A" * 21, "--email", "a@x"],
         "argument --name: String should have at most 20 characters"),
        (["--name", "Ada", "--email", "a@x", "--meta", "{"], "argument --meta: invalid JSON: "),
        (["--name", "Ada", "--email", "a@x", "--id", "7"], "unrecognized arguments: --id 7"),
    ],
)
def test_create_rejects_bad_input_with_one_line_and_status_2(
    app: CommandRegistry, argv: list[str], message: str
) -> None:
    line = error(app.invoke(["users", "create", *argv]), 2)
    assert line.startswith(f"app users create: error: {message}")


def test_create_reports_each_validation_error_on_its_own_line(app: CommandRegistry) -> None:
    result = app.invoke(["users", "create", "--name", "A" * 21, "--email", "a@x",
                         "--meta", '{"x": "many"}'])
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        "app users create: error: argument --name: String should have at most 20 characters",
        "app users create: error: argument --meta[x]: Input should be a valid integer, "
        "unable to parse string as an integer",
        "Try 'app users create --help' for help.",
    ]


def test_create_duplicate_unique_value_exits_1(app: CommandRegistry) -> None:
    add(app, "Ada", "a@x")
    line = error(app.invoke(["users", "create", "--name", "Bob", "--email", "a@x"]), 1)
    assert line.startswith("app users create: error: ") and "email" in line


def test_create_duplicate_key_exits_1(database_url: str) -> None:
    @database_registry(database_url)
    class Country(BaseModel):
        code: str = db_field(primary_key=True, max_length=2)
        name: str

    cli = CommandRegistry(prog="app")
    cli.crud(Country)
    assert ok(cli.invoke("countries create --code fr --name France")) == {
        "code": "fr", "name": "France"}
    line = error(cli.invoke("countries create --code fr --name Francia"), 1)
    assert line.startswith("app countries create: error: ")
    assert ok(cli.invoke("countries get fr"))["name"] == "France"


# -- list -----------------------------------------------------------------------------------


@pytest.fixture
def people(app: CommandRegistry) -> CommandRegistry:
    add(app, "Ada", "ada@x", "--age", "36")
    add(app, "Bob", "bob@x", "--age", "20", "--no-active")
    add(app, "Cy", "cy@x", "--age", "36")
    return app


@pytest.mark.parametrize(
    ("argv", "names"),
    [
        ([], ["Ada", "Bob", "Cy"]),
        (["--age", "36"], ["Ada", "Cy"]),
        (["--no-active"], ["Bob"]),
        (["--active", "--age", "36", "--name", "Cy"], ["Cy"]),
        (["--order-by=-name"], ["Cy", "Bob", "Ada"]),
        (["--order-by=-age,name"], ["Ada", "Cy", "Bob"]),
        (["--limit", "2"], ["Ada", "Bob"]),
        (["--limit", "1", "--offset", "1"], ["Bob"]),
        (["--name", "Nobody"], []),
    ],
)
def test_list_filters_orders_and_pages(
    people: CommandRegistry, argv: list[str], names: list[str]
) -> None:
    records = ok(people.invoke(["users", "list", *argv]))
    assert [r["name"] for r in records] == names
    assert all("password" not in r for r in records)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--nickname", "x"], "unrecognized arguments: --nickname x"),
        (["--password", "x"], "unrecognized arguments: --password x"),
        (["--age", "old"], "argument --age: invalid int value: 'old'"),
        (["--order-by", "nickname"], "User has no field 'nickname'"),
        (["--limit", "-1"], "limit must be a non-negative int"),
    ],
)
def test_list_rejects_bad_input_with_status_2(
    people: CommandRegistry, argv: list[str], message: str
) -> None:
    line = error(people.invoke(["users", "list", *argv]), 2)
    assert line.startswith(f"app users list: error: {message}")


# -- get / delete ---------------------------------------------------------------------------


def test_get_prints_one_record(people: CommandRegistry) -> None:
    assert ok(people.invoke(["users", "get", "2"]))["name"] == "Bob"


@pytest.mark.parametrize("command", ["get", "delete"])
def test_unknown_key_exits_1(people: CommandRegistry, command: str) -> None:
    line = error(people.invoke(["users", command, "99"]), 1)
    assert line == f"app users {command}: error: no User with id=99 in table 'users'"


@pytest.mark.parametrize("command", ["get", "delete", "update"])
def test_key_of_the_wrong_type_exits_2(people: CommandRegistry, command: str) -> None:
    line = error(people.invoke(["users", command, "two"]), 2)
    assert line == f"app users {command}: error: argument id: invalid int value: 'two'"


@pytest.mark.parametrize("command", ["get", "delete", "update"])
def test_missing_key_exits_2(people: CommandRegistry, command: str) -> None:
    line = error(people.invoke(["users", command]), 2)
    assert line == f"app users {command}: error: the following arguments are required: id"


def test_delete_prints_the_deleted_record_and_removes_it(
    people: CommandRegistry, user_model: Any
) -> None:
    assert ok(people.invoke(["users", "delete", "2"]))["name"] == "Bob"
    assert user_model.objects.get(2) is None
    assert error(people.invoke(["users", "get", "2"]), 1).endswith("no User with id=2 in "
                                                                    "table 'users'")


# -- update ---------------------------------------------------------------------------------


def test_update_changes_only_the_given_fields(people: CommandRegistry) -> None:
    record = ok(people.invoke(["users", "update", "1", "--bio", "Analyst", "--no-active"]))
    assert record == {"id": 1, "name": "Ada", "email": "ada@x", "age": 36, "active": False,
                      "bio": "Analyst", "meta": {}}
    assert ok(people.invoke(["users", "get", "1"])) == record


def test_update_unset_sets_nullable_fields_to_null(people: CommandRegistry) -> None:
    ok(people.invoke(["users", "update", "1", "--bio", "Analyst"]))
    assert ok(people.invoke(["users", "update", "1", "--unset", "bio"]))["bio"] is None


def test_update_hashes_a_new_password_and_never_prints_it(
    people: CommandRegistry, user_model: Any
) -> None:
    result = people.invoke(["users", "update", "1", "--change-password"], input="n3w\nn3w\n")
    assert result.exit_code == 0, result.stderr
    assert "password" not in json.loads(result.stdout) and "n3w" not in result.stdout
    assert result.stderr == "New password: \nRepeat for confirmation: \n"
    assert user_model.objects.get(1).verify_password("n3w")


def test_update_takes_no_password_option_and_needs_a_terminal_to_change_it(
    people: CommandRegistry,
) -> None:
    line = error(people.invoke(["users", "update", "1", "--password", "n3w"]), 2)
    assert "unrecognized arguments: --password n3w" in line
    line = error(people.invoke(["users", "update", "1", "--change-password"]), 2)
    assert line == "app users update: error: argument --change-password: no terminal to prompt on"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["1"], "nothing to update: give at least one of --name, --email"),
        (["1", "--age", "old"], "argument --age: invalid int value: 'old'"),
        (["1", "--name", "A" * 21], "argument --name: String should have at most 20 characters"),
        (["1", "--meta", "[1"], "argument --meta: invalid JSON"),
        (["1", "--unset", "name"], "argument --unset: invalid choice: 'name'"),
        (["1", "--id", "5"], "unrecognized arguments: --id 5"),
    ],
)
def test_update_rejects_bad_input_with_status_2(
    people: CommandRegistry, argv: list[str], message: str
) -> None:
    line = error(people.invoke(["users", "update", *argv]), 2)
    assert line.startswith(f"app users update: error: {message}")


def test_update_to_a_taken_unique_value_exits_1(people: CommandRegistry) -> None:
    line = error(people.invoke(["users", "update", "1", "--email", "bob@x"]), 1)
    assert line.startswith("app users update: error: ") and "email" in line
    assert ok(people.invoke(["users", "get", "1"]))["email"] == "ada@x"


def test_update_unknown_key_exits_1(people: CommandRegistry) -> None:
    line = error(people.invoke(["users", "update", "99", "--age", "1"]), 1)
    assert line == "app users update: error: no User with id=99 in table 'users'"


# -- registration ---------------------------------------------------------------------------


def test_commands_go_in_a_group_named_after_the_table(sqlite_url: str) -> None:
    cli = CommandRegistry(prog="app")
    group = cli.crud(_user_model(sqlite_url))
    assert group.path == "users"
    assert list(cli.all()) == [f"users {c}" for c in ("create", "list", "get", "update",
                                                       "delete")]
    assert "Create a User" in cli.invoke(["users", "--help"]).stdout


def test_group_option_names_the_group(sqlite_url: str) -> None:
    cli = CommandRegistry(prog="app")
    cli.crud(_user_model(sqlite_url), group="people", commands=["create", "get"])
    assert list(cli.all()) == ["people create", "people get"]
    assert ok(cli.invoke("people create --name Ada --email a@x"))["id"] == 1


@pytest.mark.parametrize(("prefix", "name"), [("users", "users-create"), ("", "create")])
def test_prefix_registers_flat_commands(sqlite_url: str, prefix: str, name: str) -> None:
    cli = CommandRegistry(prog="app")
    assert cli.crud(_user_model(sqlite_url), prefix=prefix) is cli
    assert name in cli.commands and not cli.groups
    line = error(cli.invoke([name]), 2)
    assert line.startswith(f"app {name}: error: the following arguments are required")


def test_required_options_and_defaults_show_in_help(app: CommandRegistry) -> None:
    out = app.invoke(["users", "create", "--help"]).stdout
    assert "Full name [required] (type: str)" in out
    assert "--age INT             (type: int; default: 0)" in out
    assert ("Asks for password at a hidden prompt (stored hashed, never printed)."
            in " ".join(out.split()))
    assert "JSON text" in out and "--password" not in out
    update = app.invoke(["users", "update", "--help"]).stdout
    assert "--change-password" in update and "Ask for a new password (hidden" in update


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"group": "a", "prefix": "b"}, "not both"),
        ({"commands": ["create", "purge"]}, "unknown command 'purge'"),
    ],
)
def test_bad_options_raise_at_registration(
    sqlite_url: str, kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(RegistrationError, match=message):
        CommandRegistry().crud(_user_model(sqlite_url), **kwargs)


def test_an_unregistered_model_raises_at_registration() -> None:
    class Plain(BaseModel):
        name: str

    with pytest.raises(RegistrationError, match=r"Plain.*@database_registry"):
        CommandRegistry().crud(Plain)


def test_a_parametrized_generic_raises_at_registration() -> None:
    class Plain(BaseModel):
        name: str

    # Python 3.10: list[Plain] passes isinstance(..., type); issubclass() would raise TypeError.
    with pytest.raises(RegistrationError, match=r"list.*@database_registry"):
        CommandRegistry().crud(list[Plain])


def test_taken_names_raise_duplicate_command_error(sqlite_url: str) -> None:
    cli = CommandRegistry()

    @cli.register("users-list")
    def users_list() -> None: ...

    with pytest.raises(DuplicateCommandError):
        cli.crud(_user_model(sqlite_url), prefix="users")


def test_a_manager_works_like_its_model(sqlite_url: str) -> None:
    model = _user_model(sqlite_url)
    cli = CommandRegistry(prog="app")
    cli.crud(model.objects, group="u")
    assert ok(cli.invoke("u list")) == []


def test_merged_crud_commands_report_the_running_program_and_path(user_model: Any) -> None:
    crud_registry = CommandRegistry(prog="inner")
    crud_registry.crud(user_model)
    cli = CommandRegistry(prog="outer")
    ops = cli.group("ops")
    ops.merge(crud_registry)
    assert error(cli.invoke("ops users get 9"), 1).startswith("outer ops users get: error: no User")
    line = error(cli.invoke("ops users create --name Ada"), 2)
    assert line == "outer ops users create: error: the following arguments are required: --email"


def test_model_with_a_field_named_command(database_url: str) -> None:
    @database_registry(database_url)
    class Job(BaseModel):
        id: int | None = None
        command: str
        retries: int = 0

    cli = CommandRegistry(prog="app")
    cli.crud(Job)
    created = ok(cli.invoke(["jobs", "create", "--command", "make test"]))
    assert created == {"id": 1, "command": "make test", "retries": 0}
    assert ok(cli.invoke(["jobs", "list", "--command", "make test"]))[0]["id"] == 1
    assert ok(cli.invoke(["jobs", "update", "1", "--command", "make"]))["command"] == "make"
