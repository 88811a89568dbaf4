"""C13: Prompt() for missing values, confirm= with --yes, and invoke(input=...)."""

from __future__ import annotations

import enum
from typing import Annotated, Any

import pytest

from registers.cli import CommandRegistry, Env, Option, Prompt
from registers.cli.exceptions import RegistrationError


class Colour(enum.Enum):
    RED = "red"
    BLUE = "blue"


def _login(cli: CommandRegistry) -> None:
    @cli.register()
    def login(
        user: Annotated[str, Prompt("User")],
        password: Annotated[str, Prompt("Password", hide_input=True, confirm=True)],
    ) -> str:
        return f"{user}:{password}"


def test_missing_values_are_prompted_in_order(cli: CommandRegistry) -> None:
    _login(cli)
    result = cli.invoke("login", input="ada\ns3cret\ns3cret\n")
    assert (result.exit_code, result.stdout) == (0, "ada:s3cret\n")
    # prompts go to stderr; a visible answer is echoed, a hidden one is not
    assert result.stderr == "User: ada\nPassword: \nRepeat for confirmation: \n"


def test_given_values_are_not_prompted(cli: CommandRegistry) -> None:
    _login(cli)
    result = cli.invoke("login --user ada --password pw", input="")
    assert (result.exit_code, result.stdout, result.stderr) == (0, "ada:pw\n", "")


def test_without_a_terminal_a_missing_prompted_value_is_a_usage_error(
    cli: CommandRegistry,
) -> None:
    _login(cli)
    result = cli.invoke("login --user ada")
    assert result.exit_code == 2
    assert result.stderr == ("app login: error: the following arguments are required: "
                             "--password (no terminal to prompt on; give --password)\n"
                             "Try 'app login --help' for help.\n")


def test_confirmation_mismatch_asks_again(cli: CommandRegistry) -> None:
    _login(cli)
    result = cli.invoke("login --user a", input="one\ntwo\nok\nok\n")
    assert result.return_value == "a:ok"
    assert result.stderr.count("Error: the two entries do not match.") == 1


def test_end_of_input_at_a_prompt_exits_1_with_one_line(cli: CommandRegistry) -> None:
    _login(cli)
    result = cli.invoke("login", input="ada\n")
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr.splitlines()[-1] == "app login: aborted: end of input at prompt 'Password'"
    assert "Traceback" not in result.stderr


def test_end_of_input_at_the_confirmation_exits_1(cli: CommandRegistry) -> None:
    _login(cli)
    result = cli.invoke("login --user a", input="pw\n")
    assert result.exit_code == 1
    assert result.stderr.endswith("\napp login: aborted: end of input at prompt 'Password'\n")


def test_answers_are_converted_and_bad_ones_asked_again(cli: CommandRegistry) -> None:
    @cli.register()
    def pick(count: Annotated[int, Prompt("How many")],
             colour: Annotated[Colour, Prompt("Colour")]) -> str:
        return f"{count} {colour.name}"

    result = cli.invoke("pick", input="two\n2\ngreen\nBLUE\n")
    assert result.stdout == "2 BLUE\n"
    assert "Colour (red, blue): green\n" in result.stderr
    assert "Error: invalid int value: 'two'." in result.stderr
    assert "Error: invalid choice: 'green' (choose from red, blue)." in result.stderr


def test_a_rejected_hidden_answer_is_not_echoed(cli: CommandRegistry) -> None:
    @cli.register()
    def unlock(pin: Annotated[int, Prompt("PIN", hide_input=True)]) -> int:
        return pin

    result = cli.invoke("unlock", input="12x4\n1234\n")
    assert result.return_value == 1234
    assert "12x4" not in result.stderr and "Error: invalid int value: ***." in result.stderr


def test_an_empty_answer_takes_the_default_shown_in_brackets(cli: CommandRegistry) -> None:
    @cli.register()
    def greet(name: Annotated[str, Prompt("Name")] = "World") -> str:
        return f"Hello, {name}!"

    result = cli.invoke("greet", input="\n")
    assert (result.stdout, result.stderr) == ("Hello, World!\n", "Name [World]: \n")
    # no terminal: the default is used without asking
    assert cli.invoke("greet").stdout == "Hello, World!\n"


def test_an_empty_answer_without_a_default_is_asked_again(cli: CommandRegistry) -> None:
    @cli.register()
    def greet(name: Annotated[str, Prompt("Name")]) -> str:
        return name

    result = cli.invoke("greet", input="\n  \nAda\n")
    assert result.stdout == "  \n"  # whitespace is an answer; only an empty line is not
    assert result.stderr.startswith("Name: \nError: a value is required.\nName: ")


def test_secret_defaults_are_never_shown(cli: CommandRegistry) -> None:
    @cli.register()
    def connect(token: Annotated[str, Prompt("Token", hide_input=True)] = "dev-token") -> str:
        return token

    result = cli.invoke("connect", input="\n")
    assert result.stdout == "dev-token\n" and "dev-token" not in result.stderr
    assert "dev-token" not in cli.invoke("connect --help").stdout


def test_env_supplies_a_prompted_value(
    cli: CommandRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    @cli.register()
    def deploy(token: Annotated[str, Env("APP_TOKEN"), Prompt("Token", hide_input=True)]) -> str:
        return token

    monkeypatch.setenv("APP_TOKEN", "from-env")
    assert cli.invoke("deploy", input="").stdout == "from-env\n"
    monkeypatch.delenv("APP_TOKEN")
    assert cli.invoke("deploy", input="typed\n").stdout == "typed\n"


def test_prompt_only_parameters_are_never_options(cli: CommandRegistry) -> None:
    @cli.register()
    def rotate(secret: Annotated[str, Prompt("New secret", hide_input=True, option=False)]) -> str:
        return secret

    assert cli.invoke("rotate", input="x\n").stdout == "x\n"
    assert cli.invoke("rotate --secret x").exit_code == 2
    assert "--secret" not in cli.invoke("rotate --help").stdout
    result = cli.invoke("rotate")
    assert result.stderr == ("app rotate: error: the following arguments are required: "
                             "--secret (no terminal to prompt on)\n"
                             "Try 'app rotate --help' for help.\n")


def test_prompt_help_says_it_prompts(cli: CommandRegistry) -> None:
    _login(cli)
    assert "(type: str; prompted when missing)" in cli.invoke("login --help").stdout


def test_hidden_prompt_values_are_redacted_by_the_logging_middleware(
    cli: CommandRegistry, caplog: pytest.LogCaptureFixture
) -> None:
    import logging

    from registers.cli import MiddlewareChain, logging_middleware_pre

    @cli.register()
    def connect(pin: Annotated[str, Prompt("PIN", hide_input=True)]) -> None: ...

    chain = MiddlewareChain()
    chain.add_pre(logging_middleware_pre)
    with caplog.at_level(logging.DEBUG, logger="registers.cli"):
        cli.invoke("connect", input="4321\n", middleware=chain)
    assert "4321" not in caplog.text and "***" in caplog.text


def _list_prompt(names: Annotated[list[str], Prompt("Names")]) -> None: ...
def _flag_prompt(force: Annotated[bool, Prompt("Force?")] = False) -> None: ...
def _count_prompt(v: Annotated[int, Prompt("V"), Option(count=True)] = 0) -> None: ...


class _Db:
    pass


def _service_prompt(db: Annotated[_Db, Prompt("Db")]) -> None: ...


@pytest.mark.parametrize(("handler", "message"), [
    (_list_prompt, "parameter 'names': Prompt() asks for one value; list[str] takes several"),
    (_flag_prompt, "parameter 'force': Prompt() on a flag; use register(confirm=...)"),
    (_count_prompt, "parameter 'v': Prompt() and count=True do not combine"),
    (_service_prompt, "parameter 'db': Prompt() on _Db"),
])
def test_bad_prompts_raise_at_registration(
    cli: CommandRegistry, handler: Any, message: str
) -> None:
    with pytest.raises(RegistrationError) as caught:
        cli.register("cmd")(handler)
    assert message in str(caught.value)


# -- confirm= -------------------------------------------------------------------------------


@pytest.fixture
def drop_app(cli: CommandRegistry) -> CommandRegistry:
    calls: list[str] = []

    @cli.register(confirm="Drop every table?")
    def drop(schema: str = "public") -> str:
        calls.append(schema)
        return f"dropped {schema}"

    cli.calls = calls  # type: ignore[attr-defined]
    return cli


@pytest.mark.parametrize("answer", ["y\n", "Y\n", "yes\n", " YES \n"])
def test_a_yes_answer_runs_the_command(drop_app: CommandRegistry, answer: str) -> None:
    result = drop_app.invoke("drop", input=answer)
    assert (result.exit_code, result.stdout) == (0, "dropped public\n")
    assert result.stderr.startswith("Drop every table? [y/N]: ")


@pytest.mark.parametrize("answer", ["n\n", "\n", "no\n"])
def test_a_refused_confirmation_exits_1_with_one_line(
    drop_app: CommandRegistry, answer: str
) -> None:
    result = drop_app.invoke("drop", input=answer)
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr.splitlines()[-1] == "app drop: aborted: not confirmed"
    assert drop_app.calls == []  # type: ignore[attr-defined]


def test_an_unclear_answer_is_asked_again(drop_app: CommandRegistry) -> None:
    result = drop_app.invoke("drop", input="maybe\ny\n")
    assert result.exit_code == 0 and "Error: answer y or n." in result.stderr


def test_yes_skips_the_question(drop_app: CommandRegistry) -> None:
    result = drop_app.invoke("drop --yes --schema s")
    assert (result.exit_code, result.stdout, result.stderr) == (0, "dropped s\n", "")


def test_without_a_terminal_and_without_yes_nothing_runs(drop_app: CommandRegistry) -> None:
    result = drop_app.invoke("drop")
    assert result.exit_code == 1
    assert result.stderr == ("app drop: aborted: not confirmed (stdin is not a terminal; "
                             "pass --yes to confirm)\n")
    assert drop_app.calls == []  # type: ignore[attr-defined]


def test_end_of_input_at_the_question_exits_1(drop_app: CommandRegistry) -> None:
    result = drop_app.invoke("drop", input="")
    assert result.exit_code == 1
    assert result.stderr.splitlines()[-1] == (
        "app drop: aborted: end of input at prompt 'Drop every table?'")




def test_yes_never_reaches_the_handler(cli: CommandRegistry) -> None:
    @cli.register(confirm="Sure?")
    def wipe(force: bool = False) -> dict[str, bool]:
        return {"force": force}

    assert cli.invoke("wipe --yes").return_value == {"force": False}
    assert "--yes" in cli.invoke("wipe --help").stdout


def test_prompts_come_before_the_question(cli: CommandRegistry) -> None:
    @cli.register(confirm="Really delete?")
    def delete(name: Annotated[str, Prompt("Name")]) -> str:
        return name

    result = cli.invoke("delete", input="db1\ny\n")
    assert result.stderr == "Name: db1\nReally delete? [y/N]: y\n"


def test_a_parameter_named_yes_collides_with_confirm(cli: CommandRegistry) -> None:
    with pytest.raises(RegistrationError, match="option '--yes' is already used by confirm="):
        @cli.register(confirm="Sure?")
        def run(yes: bool = False) -> None: ...


@pytest.mark.parametrize("question", ["", "   ", 5])
def test_confirm_needs_a_question(cli: CommandRegistry, question: Any) -> None:
    with pytest.raises(RegistrationError, match="confirm= needs the question"):
        cli.register(confirm=question)(lambda: None)


def test_ctrl_c_at_a_prompt_exits_130(
    cli: CommandRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    from registers.cli import terminal

    def interrupt(question: str, hide_input: bool) -> str:
        raise KeyboardInterrupt

    monkeypatch.setattr(terminal, "_read", interrupt)
    _login(cli)
    result = cli.invoke("login", input="x\n")
    assert (result.exit_code, result.stderr) == (130, "Interrupted.\n")


def test_env_secret_true_is_redacted_in_logs_whatever_the_name(
    cli: CommandRegistry, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    import logging

    from registers.cli import MiddlewareChain, logging_middleware_pre

    @cli.register()
    def connect(dsn: Annotated[str, Env("APP_DSN", secret=True)], plain: str = "p") -> None: ...

    monkeypatch.setenv("APP_DSN", "postgres://u:pw@h/db")
    chain = MiddlewareChain()
    chain.add_pre(logging_middleware_pre)
    with caplog.at_level(logging.DEBUG, logger="registers.cli"):
        assert cli.invoke("connect", middleware=chain).exit_code == 0
    assert "pw@h" not in caplog.text and "'dsn': '***'" in caplog.text
    assert "'plain': 'p'" in caplog.text
