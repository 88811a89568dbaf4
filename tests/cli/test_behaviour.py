"""Issue 17: parsing behaves like Click on real-world parameters and bad input."""

from __future__ import annotations

import asyncio
import decimal
import fractions
import math
from collections.abc import AsyncIterator, Iterator
from typing import Annotated, Any, Protocol

import pytest

from registers.cli import CommandRegistry, DIContainer, MiddlewareChain
from registers.cli.env import Env


@pytest.fixture
def app(cli: CommandRegistry) -> CommandRegistry:
    @cli.register()
    def add(title: str, tag: list[str] = [], point: tuple[int, int] = (0, 0),  # noqa: B006
            verbose: bool = False) -> dict[str, Any]:
        return {"title": title, "tag": tag, "point": point, "verbose": verbose}

    @cli.register()
    def files(names: list[str], force: bool = False, mode: str = "r") -> dict[str, Any]:
        return {"names": names, "force": force, "mode": mode}

    return cli


# -- list and tuple options: one value per occurrence ------------------------------------------


def test_list_option_takes_one_value_and_leaves_the_positional(app: CommandRegistry) -> None:
    result = app.invoke(["add", "--tag", "docs", "Write the docs", "--tag", "x"])
    assert result.return_value["tag"] == ["docs", "x"]
    assert result.return_value["title"] == "Write the docs"


def test_fixed_tuple_option_given_twice_the_last_wins(app: CommandRegistry) -> None:
    result = app.invoke(["add", "T", "--point", "1", "2", "--point", "3", "4"])
    assert result.return_value["point"] == (3, 4)


def test_fixed_tuple_option_with_too_few_values_is_a_usage_error(app: CommandRegistry) -> None:
    result = app.invoke(["add", "T", "--point", "1"])
    assert result.exit_code == 2
    assert "argument --point: expected 2 arguments" in result.stderr


@pytest.mark.parametrize(
    "argv",
    [
        ["files", "a", "b", "--force", "--mode", "w"],
        ["files", "--force", "a", "b", "--mode", "w"],
        ["files", "a", "--force", "b", "--mode", "w"],
        ["files", "a", "--mode", "w", "b", "--force"],
    ],
)
def test_options_and_positionals_intermix(app: CommandRegistry, argv: list[str]) -> None:
    assert app.invoke(argv).return_value == {"names": ["a", "b"], "force": True, "mode": "w"}


def test_double_dash_ends_options(app: CommandRegistry) -> None:
    assert app.invoke(["files", "a", "--", "--force"]).return_value["names"] == ["a", "--force"]


@pytest.mark.parametrize(
    ("argv", "tag"),
    [(["add", "T", "--tag", "-x"], ["-x"]), (["add", "--tag", "-", "T"], ["-"]),
     (["add", "T", "--tag", "-x=1", "--tag", "--weird"], ["-x=1", "--weird"])],
)
def test_option_value_may_start_with_a_dash(
    app: CommandRegistry, argv: list[str], tag: list[str]
) -> None:
    assert app.invoke(argv).return_value["tag"] == tag


def test_an_option_is_not_taken_as_the_value_of_another(app: CommandRegistry) -> None:
    result = app.invoke(["add", "T", "--tag", "--verbose"])
    assert result.exit_code == 2
    assert "argument --tag: expected one argument" in result.stderr


# -- no prefix abbreviations --------------------------------------------------------------------


@pytest.mark.parametrize("prefix", ["--verb", "--v", "--verbos"])
def test_option_prefixes_are_not_accepted(app: CommandRegistry, prefix: str) -> None:
    result = app.invoke(["add", "T", prefix])
    assert result.exit_code == 2
    assert f"unrecognized arguments: {prefix}" in result.stderr


def test_mistyped_option_gets_did_you_mean(app: CommandRegistry) -> None:
    result = app.invoke(["add", "T", "--verbsoe"])
    assert result.stderr.splitlines() == [
        "app add: error: unrecognized arguments: --verbsoe. Did you mean '--verbose'?",
        "Try 'app add --help' for help.",
    ]


def test_mistyped_option_with_a_value_gets_did_you_mean(app: CommandRegistry) -> None:
    assert "Did you mean '--mode'?" in app.invoke(["files", "a", "--mdoe=w"]).stderr


def test_far_off_option_gets_no_suggestion(app: CommandRegistry) -> None:
    result = app.invoke(["add", "T", "--xyzzy"])
    assert "Did you mean" not in result.stderr


@pytest.mark.parametrize(
    ("argv", "try_line"),
    [
        (["nope"], "Try 'app --help' for help."),
        (["add"], "Try 'app add --help' for help."),
        (["add", "T", "--point", "x", "y"], "Try 'app add --help' for help."),
        (["--bogus"], "Try 'app --help' for help."),
    ],
)
def test_every_usage_error_ends_with_the_try_line(
    app: CommandRegistry, argv: list[str], try_line: str
) -> None:
    result = app.invoke(argv)
    assert result.exit_code == 2
    assert result.stderr.splitlines()[-1] == try_line
    assert len(result.stderr.splitlines()) == 2


# -- negative numbers in every notation ---------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [("-1", -1.0), ("-1.5", -1.5), ("-.5", -0.5), ("-1.5e3", -1500.0), ("-1E-3", -0.001),
     ("-1_000", -1000.0), ("-1.5E+3", -1500.0), ("-inf", -math.inf), ("-Infinity", -math.inf)],
)
def test_negative_floats_are_values(cli: CommandRegistry, text: str, expected: float) -> None:
    @cli.register()
    def move(x: float, y: float = 0.0) -> tuple[float, float]:
        return (x, y)

    assert cli.invoke(["move", text, "--y", text]).return_value == (expected, expected)
    assert cli.invoke(["move", text, f"--y={text}"]).return_value == (expected, expected)


def test_negative_nan_is_a_value(cli: CommandRegistry) -> None:
    @cli.register()
    def move(y: float = 0.0) -> float:
        return y

    assert math.isnan(cli.invoke(["move", "--y", "-nan"]).return_value)


@pytest.mark.parametrize(
    ("annotation", "text", "expected"),
    [(int, "-7", -7), (int, "-1_000", -1000),
     (decimal.Decimal, "-1.5e3", decimal.Decimal("-1.5e3")),
     (fractions.Fraction, "-3/4", fractions.Fraction(-3, 4))],
)
def test_negative_numbers_of_other_types(
    cli: CommandRegistry, annotation: Any, text: str, expected: Any
) -> None:
    def take(value: Any = None) -> Any:
        return value

    take.__annotations__["value"] = annotation
    cli.register("take")(take)
    assert cli.invoke(["take", "--value", text]).return_value == expected


def test_negative_numbers_in_a_list_option(cli: CommandRegistry) -> None:
    @cli.register()
    def pts(v: list[float] = []) -> list[float]:  # noqa: B006
        return v

    assert cli.invoke(["pts", "--v", "-1e3", "--v", "-.5"]).return_value == [-1000.0, -0.5]


# -- help wrapped to the terminal width ---------------------------------------------------------


LONG = " ".join(["The summary of a command that goes on and on."] * 6)


@pytest.fixture
def wordy(cli: CommandRegistry) -> CommandRegistry:
    def cmd(value: Annotated[str, LONG] = "x") -> None: ...

    cmd.__doc__ = LONG
    cli.register("cmd")(cmd)
    return cli


@pytest.mark.parametrize("argv", [["--help"], ["cmd", "--help"]])
def test_help_is_wrapped_to_80_columns_when_not_a_terminal(
    wordy: CommandRegistry, argv: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("COLUMNS", raising=False)
    out = wordy.invoke(argv).stdout
    assert max(len(line) for line in out.splitlines()) <= 80
    assert "goes on and on." in out
    assert " ".join(out.split()).count("The summary of a command") >= 6


@pytest.mark.parametrize("columns", [50, 120])
def test_help_follows_the_terminal_width(
    wordy: CommandRegistry, monkeypatch: pytest.MonkeyPatch, columns: int
) -> None:
    monkeypatch.setenv("COLUMNS", str(columns))
    lines = wordy.invoke(["cmd", "--help"]).stdout.splitlines()
    assert max(len(line) for line in lines) <= columns
    assert max(len(line) for line in lines) > columns - 20


def test_indented_description_blocks_are_kept(cli: CommandRegistry) -> None:
    @cli.register(description="Run it.\n\n    app run --fast\n    app run --slow")
    def run() -> None: ...

    assert "    app run --fast\n    app run --slow" in cli.invoke(["run", "--help"]).stdout


# -- parameters named ``command`` -------------------------------------------------------------


def test_option_and_argument_named_command(cli: CommandRegistry) -> None:
    @cli.register()
    def shell(command: str) -> str:
        return command

    @cli.register()
    def run(*, command: str = "ls") -> str:
        return command

    assert cli.invoke(["shell", "echo hi"]).return_value == "echo hi"
    assert cli.invoke(["run", "--command", "pwd"]).return_value == "pwd"
    assert cli.invoke(["run"]).return_value == "ls"


# -- generators, sync and async -----------------------------------------------------------------


def test_async_generator_handler_runs_and_streams(cli: CommandRegistry) -> None:
    @cli.register()
    async def ticks(n: int = 3) -> AsyncIterator[dict[str, int]]:
        for i in range(n):
            await asyncio.sleep(0)
            yield {"tick": i}

    result = cli.invoke(["ticks", "--n", "2"])
    assert result.exit_code == 0
    assert result.return_value == [{"tick": 0}, {"tick": 1}]
    assert result.stdout == '{\n  "tick": 0\n}\n{\n  "tick": 1\n}\n'


def test_generator_handler_prints_each_item(cli: CommandRegistry) -> None:
    @cli.register()
    def lines() -> Iterator[str]:
        yield "a"
        yield "b"

    result = cli.invoke(["lines"])
    assert (result.stdout, result.return_value) == ("a\nb\n", ["a", "b"])


@pytest.mark.parametrize("is_async", [False, True])
def test_middleware_sees_a_generator_command_finish(cli: CommandRegistry, is_async: bool) -> None:
    seen: list[Any] = []
    chain = MiddlewareChain()
    chain.add_pre(lambda command, kwargs: seen.append(("pre", command)))
    chain.add_post(lambda command, result: seen.append(("post", result)))
    if is_async:
        async def items() -> AsyncIterator[int]:
            seen.append("body")
            yield 1
    else:
        def items() -> Iterator[int]:  # type: ignore[misc]
            seen.append("body")
            yield 1
    cli.register("items")(items)
    assert cli.invoke(["items"], middleware=chain).exit_code == 0
    assert seen == [("pre", "items"), "body", ("post", [1])]


# -- services typed with a Protocol -------------------------------------------------------------


class Repo(Protocol):
    def name(self) -> str: ...


class Clock:
    pass


class MemoryRepo:
    def name(self) -> str:
        return "memory"


def test_protocol_typed_service_is_injected_next_to_other_services(cli: CommandRegistry) -> None:
    @cli.register()
    def show(repo: Repo, clock: Clock) -> str:
        return repo.name()

    container = DIContainer()
    container.register(Clock, Clock())
    container.register(Repo, MemoryRepo())  # type: ignore[type-abstract]
    assert cli.invoke(["show"], container=container).stdout == "memory\n"


def test_missing_protocol_service_is_the_usual_error(cli: CommandRegistry) -> None:
    @cli.register()
    def show(repo: Repo) -> str:
        return repo.name()

    container = DIContainer()
    container.register(Clock, Clock())
    result = cli.invoke(["show"], container=container)
    assert result.exit_code == 1
    assert "no service registered for parameter 'repo' of type Repo" in result.stderr
    assert not container.has(Repo)


# -- Env: lists, booleans, empty values ---------------------------------------------------------


@pytest.fixture
def envapp(cli: CommandRegistry) -> CommandRegistry:
    @cli.register()
    def deploy(
        tags: Annotated[list[str], Env("APP_TAGS")] = [],  # noqa: B006
        ids: Annotated[list[int], Env("APP_IDS")] = [],  # noqa: B006
        size: Annotated[tuple[int, int], Env("APP_SIZE")] = (1, 1),
        debug: Annotated[bool, Env("APP_DEBUG")] = False,
        region: Annotated[str, Env("APP_REGION")] = "eu",
        pin: Annotated[int, Env("APP_PIN")] = 0,
    ) -> dict[str, Any]:
        return {"tags": tags, "ids": ids, "size": size, "debug": debug, "region": region,
                "pin": pin}

    return cli


@pytest.mark.parametrize(
    ("name", "text", "key", "expected"),
    [
        ("APP_TAGS", "a b", "tags", ["a", "b"]),
        ("APP_TAGS", "  a\tb\n c ", "tags", ["a", "b", "c"]),
        ("APP_IDS", "7", "ids", [7]),
        ("APP_IDS", "1 -2", "ids", [1, -2]),
        ("APP_SIZE", "3 4", "size", (3, 4)),
        *[("APP_DEBUG", t, "debug", True) for t in ("1", "true", "YES", "on", "y", " True ")],
        *[("APP_DEBUG", t, "debug", False) for t in ("0", "false", "No", "off", "n")],
    ],
)
def test_env_values_are_parsed_like_the_command_line(
    envapp: CommandRegistry, monkeypatch: pytest.MonkeyPatch, name: str, text: str, key: str,
    expected: Any,
) -> None:
    monkeypatch.setenv(name, text)
    assert envapp.invoke(["deploy"]).return_value[key] == expected


@pytest.mark.parametrize("name", ["APP_TAGS", "APP_IDS", "APP_SIZE", "APP_DEBUG", "APP_REGION"])
def test_empty_env_variable_counts_as_unset(
    envapp: CommandRegistry, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    monkeypatch.setenv(name, "")
    result = envapp.invoke(["deploy"])
    assert result.exit_code == 0
    assert result.return_value == {"tags": [], "ids": [], "size": (1, 1), "debug": False,
                                   "region": "eu", "pin": 0}


def test_empty_env_variable_leaves_a_required_option_missing(
    cli: CommandRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    @cli.register()
    def login(user: Annotated[str, Env("APP_USER")]) -> str:
        return user

    monkeypatch.setenv("APP_USER", "")
    result = cli.invoke(["login"])
    assert result.exit_code == 2
    assert "the following arguments are required: --user" in result.stderr


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("APP_DEBUG", "ture", "environment variable APP_DEBUG: invalid boolean value: 'ture'"),
        ("APP_IDS", "1 two", "environment variable APP_IDS: invalid int value: 'two'"),
        ("APP_SIZE", "1 2 3", "environment variable APP_SIZE: expected 2 values, got 3"),
        ("APP_PIN", "12ab", "environment variable APP_PIN: invalid int value: ***"),
    ],
)
def test_bad_env_value_is_a_usage_error_naming_the_variable(
    envapp: CommandRegistry, monkeypatch: pytest.MonkeyPatch, name: str, text: str, message: str
) -> None:
    monkeypatch.setenv(name, text)
    result = envapp.invoke(["deploy"])
    assert result.exit_code == 2
    lines = result.stderr.splitlines()
    assert lines[0].startswith(f"app deploy: error: {message}")
    assert lines[1] == "Try 'app deploy --help' for help."
    if name == "APP_PIN":
        assert "12ab" not in result.stderr


def test_command_line_beats_a_bad_env_value(
    envapp: CommandRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("APP_DEBUG", "ture")
    assert envapp.invoke(["deploy", "--debug"]).return_value["debug"] is True


# -- parameter names ----------------------------------------------------------------------------


def test_trailing_underscore_is_not_part_of_the_option(cli: CommandRegistry) -> None:
    @cli.register()
    def find(type_: str = "f", from_: int = 0) -> tuple[str, int]:
        return (type_, from_)

    assert cli.invoke(["find", "--type", "d", "--from", "-3"]).return_value == ("d", -3)
    assert "--type TEXT" in cli.invoke(["find", "--help"]).stdout


@pytest.mark.parametrize(
    "source",
    ["def cmd(type: str = 'a', type_: str = 'b') -> None: ...",
     "def cmd(dry_run: bool = True, no_dry_run: str = 'x') -> None: ..."],
)
def test_two_parameters_with_one_option_are_refused_at_registration(
    cli: CommandRegistry, source: str
) -> None:
    from registers.cli.exceptions import RegistrationError

    namespace: dict[str, Any] = {}
    exec(source, namespace)
    with pytest.raises(RegistrationError, match="would both be --"):
        cli.register("cmd")(namespace["cmd"])


def test_env_on_an_injected_service_is_refused(cli: CommandRegistry) -> None:
    from registers.cli.exceptions import RegistrationError

    def cmd(clock: Annotated[Clock, Env("APP_CLOCK")]) -> None: ...

    with pytest.raises(RegistrationError, match="parameter 'clock': Env"):
        cli.register("cmd")(cmd)


def test_build_parser_namespace_keeps_the_documented_command_attribute(
    cli: CommandRegistry,
) -> None:
    from registers.cli import build_parser

    @cli.register()
    def seed(count: int) -> None: ...

    @cli.register()
    def shell(command: str) -> None: ...

    parser = build_parser(cli)
    assert parser.parse_args(["seed", "3"]).command == "seed"
    assert parser.parse_args(["shell", "ls -l"]).command == "ls -l"  # the parameter
    assert parser.parse_args([]).command is None
