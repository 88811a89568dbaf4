"""C13: cli.callback() root options (``app --verbose deploy``) handed to commands by type."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import pytest

from registers.cli import CommandRegistry, DIContainer, Env, Option, Prompt
from registers.cli.exceptions import RegistrationError


class Settings:
    def __init__(self, verbose: int, config: Path, dry_run: bool) -> None:
        self.verbose, self.config, self.dry_run = verbose, config, dry_run


class Database:
    def __init__(self, url: str) -> None:
        self.url = url


@pytest.fixture
def app(cli: CommandRegistry) -> CommandRegistry:
    calls: list[str] = []

    @cli.callback()
    def settings(
        verbose: Annotated[int, Option("-v", count=True)] = 0,
        config: Annotated[Path, Option("-c")] = Path("app.toml"),
        dry_run: bool = False,
    ) -> Settings:
        calls.append("callback")
        return Settings(verbose, config, dry_run)

    @cli.register(ops=["-d"])
    def deploy(service: str, settings: Settings, verbose: int = 0) -> str:
        calls.append("deploy")
        return (f"{service} v={settings.verbose} c={settings.config} dry={settings.dry_run} "
                f"own={verbose}")

    cli.group("db").register()(lambda settings: f"db v={settings.verbose}")
    cli.calls = calls  # type: ignore[attr-defined]
    return cli


@pytest.mark.parametrize(("argv", "expected"), [
    ("deploy api", "api v=0 c=app.toml dry=False own=0"),
    ("-v deploy api", "api v=1 c=app.toml dry=False own=0"),
    ("-vvv --dry-run deploy api", "api v=3 c=app.toml dry=True own=0"),
    ("-c x.toml -v deploy api", "api v=1 c=x.toml dry=False own=0"),
    ("-cx.toml deploy api", "api v=0 c=x.toml dry=False own=0"),
    ("--config=y.toml deploy api", "api v=0 c=y.toml dry=False own=0"),
    ("--config y.toml --verbose -d api", "api v=1 c=y.toml dry=False own=0"),
    # the command's own --verbose is a different option from the root's
    ("-v deploy api --verbose 5", "api v=1 c=app.toml dry=False own=5"),
])
def test_root_options_reach_commands_through_the_container(
    app: CommandRegistry, argv: str, expected: str
) -> None:
    result = app.invoke(argv)
    assert (result.exit_code, result.stdout) == (0, expected + "\n"), result.stderr
    assert app.calls == ["callback", "deploy"]  # type: ignore[attr-defined]


def test_root_options_after_the_command_are_the_commands_own(app: CommandRegistry) -> None:
    result = app.invoke("deploy api --dry-run")
    assert result.exit_code == 2 and "unrecognized arguments: --dry-run" in result.stderr


def test_grouped_commands_get_the_callbacks_result_too(cli: CommandRegistry) -> None:
    @cli.callback
    def root(verbose: bool = False) -> Settings:
        return Settings(int(verbose), Path(), False)

    @cli.group("db").register()
    def migrate(settings: Settings) -> str:
        return f"v={settings.verbose}"

    assert cli.invoke("--verbose db migrate").stdout == "v=1\n"


def test_root_help_lists_root_options(app: CommandRegistry) -> None:
    out = app.invoke("--help").stdout
    assert "-v, --verbose" in out and "-c, --config PATH" in out and "--dry-run" in out
    assert "[OPTIONS]" in out


def test_a_bad_root_option_value_is_a_usage_error(cli: CommandRegistry) -> None:
    @cli.callback()
    def root(jobs: int = 1) -> None: ...

    @cli.register()
    def run() -> None: ...

    result = cli.invoke("--jobs many run")
    assert (result.exit_code, result.stderr) == (
        2, "app: error: argument --jobs: invalid int value: 'many'\nTry 'app --help' for help.\n")


def test_root_options_without_a_command_show_help(app: CommandRegistry) -> None:
    result = app.invoke("-v")
    assert result.exit_code == 2 and "usage: app" in result.stderr


def test_a_callback_returning_none_registers_nothing(cli: CommandRegistry) -> None:
    seen: list[bool] = []

    @cli.callback()
    def root(quiet: bool = False) -> None:
        seen.append(quiet)

    @cli.register()
    def run() -> str:
        return "ran"

    assert cli.invoke("--quiet run").stdout == "ran\n" and seen == [True]


def test_the_callback_gets_services_and_the_callers_container_is_unchanged(
    cli: CommandRegistry,
) -> None:
    container = DIContainer()
    container.register(Database, Database("sqlite://"))

    @cli.callback()
    def root(db: Database, verbose: bool = False) -> Settings:
        return Settings(int(verbose), Path(db.url), False)

    @cli.register()
    def run(settings: Settings, db: Database) -> str:
        return f"{settings.config} {db.url}"

    assert cli.invoke("-h").exit_code == 0
    assert cli.invoke("--verbose run", container=container).stdout == "sqlite: sqlite://\n"
    assert not container.has(Settings)


def test_an_unannotated_callback_registers_its_results_type(cli: CommandRegistry) -> None:
    @cli.callback()
    def root(verbose: bool = False):  # type: ignore[no-untyped-def]
        return Settings(int(verbose), Path(), False)

    @cli.register()
    def run(settings: Settings) -> int:
        return settings.verbose

    assert cli.invoke("--verbose run").return_value == 1


def test_an_unannotated_callback_returning_a_string_fails_with_one_line(
    cli: CommandRegistry,
) -> None:
    @cli.callback()
    def root(verbose: bool = False):  # type: ignore[no-untyped-def]
        return "text"

    @cli.register()
    def run() -> None: ...

    result = cli.invoke("run")
    assert result.exit_code == 1
    assert result.stderr == ("Callback 'root' returned a str; return an object of your own "
                             "class (or None).\n")


def test_an_async_callback_runs(cli: CommandRegistry) -> None:
    @cli.callback()
    async def root(verbose: bool = False) -> Settings:
        return Settings(int(verbose), Path(), False)

    @cli.register()
    async def run(settings: Settings) -> int:
        return settings.verbose

    assert cli.invoke("--verbose run").return_value == 1


def test_root_options_from_env_and_prompts(
    cli: CommandRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    @cli.callback()
    def root(
        profile: Annotated[str, Env("APP_PROFILE")] = "dev",
        token: Annotated[str, Prompt("Token", hide_input=True)] = "",
    ) -> Settings:
        return Settings(0, Path(f"{profile}:{token}"), False)

    @cli.register()
    def run(settings: Settings) -> str:
        return str(settings.config)

    monkeypatch.setenv("APP_PROFILE", "prod")
    assert cli.invoke("run", input="t0k\n").stdout == "prod:t0k\n"
    assert cli.invoke("--token x run").stdout == "prod:x\n"


def test_a_refused_confirmation_never_runs_the_callback(cli: CommandRegistry) -> None:
    ran: list[str] = []

    @cli.callback()
    def root(verbose: bool = False) -> None:
        ran.append("callback")

    @cli.register(confirm="Sure?")
    def wipe() -> None: ...

    assert cli.invoke("wipe", input="n\n").exit_code == 1 and ran == []


class _Thing:
    pass


@pytest.mark.parametrize(("build", "message"), [
    (lambda cli: cli.callback()(lambda name: None), "parameter 'name' would be positional"),
    (lambda cli: cli.callback()(_returns_str), "it returns str; return an object of your own"),
    (lambda cli: cli.callback()(_short_h), "'-h' is reserved for help"),
    (lambda cli: cli.callback()(_version), "option '--version' is already used by the "
                                            "program's --version"),
    (lambda cli: (cli.register(ops=["-q"])(lambda: None), cli.callback()(_quiet)),
     "option '-q' is already used by command alias '-q'"),
    (lambda cli: (cli.callback()(_quiet), cli.register(ops=["-q"])(lambda: None)),
     "alias '-q' is a root option of callback '_quiet'"),
    (lambda cli: (cli.callback()(_quiet), cli.callback()(_quiet)), "already has callback"),
    (lambda cli: cli.group("g").callback()(_quiet), "callbacks belong to the root registry"),
])
def test_bad_callbacks_raise_at_registration(build: Any, message: str) -> None:
    cli = CommandRegistry(prog="app")
    with pytest.raises(RegistrationError, match=message):
        build(cli)


def _returns_str(verbose: bool = False) -> str:
    return ""


def _short_h(host: Annotated[str, Option("-h")] = "") -> None: ...
def _version(version: bool = False) -> None: ...
def _quiet(quiet: Annotated[bool, Option("-q")] = False) -> None: ...
def _short_v(verbose: Annotated[bool, Option("-v")] = False) -> None: ...


def test_merge_adopts_the_other_programs_callback(cli: CommandRegistry) -> None:
    plugin = CommandRegistry()
    plugin.callback()(_quiet)
    cli.merge(plugin)
    assert cli.root_callback is not None and cli.root_callback.name == "_quiet"
    with pytest.raises(RegistrationError, match="both programs have a root callback"):
        other = CommandRegistry()
        other.callback()(_short_v)
        cli.merge(other)


# -- property: wherever the root options are, the command word is found ------------------

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_WORDS = st.sampled_from(["deploy", "db", "api", "-", "x.toml", "--", "-v"])


@st.composite
def _root_tokens(draw: st.DrawFn) -> tuple[list[str], int, Path, bool]:
    """Root options in any spelling; returns (tokens, verbosity, config, dry_run)."""
    tokens: list[str] = []
    verbose, config, dry = 0, Path("app.toml"), False
    for _ in range(draw(st.integers(0, 5))):
        kind = draw(st.sampled_from(["v", "vv", "verbose", "c", "c=", "cx", "dry"]))
        if kind in ("v", "vv"):
            tokens.append("-" + kind)
            verbose += len(kind)
        elif kind == "verbose":
            tokens.append("--verbose")
            verbose += 1
        elif kind == "dry":
            tokens.append("--dry-run")
            dry = True
        else:
            value = draw(_WORDS.filter(lambda w: w not in ("--", "-v")))
            tokens += {"c": ["-c", value], "c=": [f"--config={value}"], "cx": [f"-c{value}"]}[kind]
            config = Path(value)
    return tokens, verbose, config, dry


@settings(max_examples=150, deadline=None)
@given(_root_tokens())
def test_the_command_word_is_found_after_any_root_options(
    drawn: tuple[list[str], int, Path, bool],
) -> None:
    tokens, verbose, config, dry = drawn
    cli = CommandRegistry(prog="app")

    @cli.callback()
    def settings_(
        verbose: Annotated[int, Option("-v", count=True)] = 0,
        config: Annotated[Path, Option("-c")] = Path("app.toml"),
        dry_run: bool = False,
    ) -> Settings:
        return Settings(verbose, config, dry_run)

    @cli.register()
    def deploy(service: str, settings: Settings) -> tuple[str, int, str, bool]:
        return service, settings.verbose, str(settings.config), settings.dry_run

    result = cli.invoke([*tokens, "deploy", "api"])
    assert result.exit_code == 0, (tokens, result.stderr)
    assert result.return_value == ("api", verbose, str(config), dry)
