"""C13: Option() short names, counts, required options, hidden and deprecated, exclusion."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import pytest

from registers.cli import CommandRegistry, Env, FrameworkError, Option, Prompt
from registers.cli.exceptions import RegistrationError


def test_short_and_long_names_both_work(cli: CommandRegistry) -> None:
    @cli.register()
    def export(output: Annotated[Path, Option("-o", "--output", help="Where")] = Path("a")) -> str:
        return str(output)

    assert cli.invoke("export -o x.csv").stdout == "x.csv\n"
    assert cli.invoke("export --output y.csv").stdout == "y.csv\n"
    assert cli.invoke("export -oz.csv").stdout == "z.csv\n"
    assert cli.invoke("export").stdout == "a\n"
    help_text = cli.invoke("export --help").stdout
    assert "-o, --output PATH" in help_text and "Where (type: path; default: a)" in help_text


def test_a_short_name_alone_keeps_the_parameters_long_name(cli: CommandRegistry) -> None:
    @cli.register()
    def run(dry_run: Annotated[bool, Option("-n")] = False) -> str:
        return str(dry_run)

    assert cli.invoke("run -n").stdout == "True\n"
    assert cli.invoke("run --dry-run").stdout == "True\n"
    assert cli.invoke("run").stdout == "False\n"


def test_a_declared_long_name_replaces_the_parameters(cli: CommandRegistry) -> None:
    @cli.register()
    def run(out: Annotated[str, Option("--dest")] = "-") -> str:
        return out

    assert cli.invoke("run --dest x").stdout == "x\n"
    bad = cli.invoke("run --out x")
    assert bad.exit_code == 2 and "unrecognized arguments: --out x" in bad.stderr


def test_short_names_on_flags_with_a_true_default_keep_no_form(cli: CommandRegistry) -> None:
    @cli.register()
    def run(colour: Annotated[bool, Option("-c")] = True) -> str:
        return str(colour)

    assert cli.invoke("run --no-colour").stdout == "False\n"
    assert cli.invoke("run -c").stdout == "True\n"


@pytest.mark.parametrize(("argv", "count"), [("", 0), ("-v", 1), ("-vvv", 3), ("-v -v", 2),
                                             ("--verbose -vv", 3)])
def test_count_counts_repetitions(cli: CommandRegistry, argv: str, count: int) -> None:
    @cli.register()
    def run(verbose: Annotated[int, Option("-v", count=True)] = 0) -> int:
        return verbose

    assert cli.invoke(f"run {argv}").return_value == count


def test_count_without_a_default_starts_at_zero(cli: CommandRegistry) -> None:
    @cli.register()
    def run(verbose: Annotated[int, Option("-v", count=True)]) -> int:
        return verbose

    assert cli.invoke("run").return_value == 0
    assert "repeatable, e.g. -vvv" in cli.invoke("run --help").stdout


def test_count_refuses_a_value(cli: CommandRegistry) -> None:
    @cli.register()
    def run(verbose: Annotated[int, Option("-v", count=True)] = 0) -> int:
        return verbose

    bad = cli.invoke("run --verbose=2")
    assert bad.exit_code == 2 and "ignored explicit argument '2'" in bad.stderr


def test_option_without_a_default_is_a_required_option(cli: CommandRegistry) -> None:
    @cli.register()
    def login(user: Annotated[str, Option("-u")]) -> str:
        return user

    assert cli.invoke("login -u ada").stdout == "ada\n"
    bad = cli.invoke("login")
    assert (bad.exit_code, bad.stderr) == (
        2, "app login: error: the following arguments are required: -u/--user\n"
           "Try 'app login --help' for help.\n")
    assert "(type: str; required)" in cli.invoke("login --help").stdout


def test_required_true_overrides_a_default(cli: CommandRegistry) -> None:
    @cli.register()
    def login(user: Annotated[str | None, Option(required=True)] = None) -> str:
        return str(user)

    assert cli.invoke("login").exit_code == 2
    assert cli.invoke("login --user x").stdout == "x\n"


def test_a_required_option_can_come_from_its_env_variable(
    cli: CommandRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    @cli.register()
    def login(user: Annotated[str, Option("-u"), Env("APP_USER")]) -> str:
        return user

    assert cli.invoke("login").exit_code == 2
    monkeypatch.setenv("APP_USER", "env-user")
    assert cli.invoke("login").stdout == "env-user\n"
    assert cli.invoke("login -u cli").stdout == "cli\n"


def test_option_metavar_and_help(cli: CommandRegistry) -> None:
    @cli.register()
    def run(limit: Annotated[int, Option("-n", help="At most N", metavar="N")] = 5) -> int:
        return limit

    assert "-n, --limit N  At most N (type: int; default: 5)" in cli.invoke("run -h").stdout


def test_hidden_option_works_but_is_not_in_help(cli: CommandRegistry) -> None:
    @cli.register()
    def run(debug_level: Annotated[int, Option(hidden=True)] = 0, name: str = "x") -> str:
        return f"{debug_level} {name}"

    assert cli.invoke("run --debug-level 3").stdout == "3 x\n"
    assert "debug" not in cli.invoke("run --help").stdout


def test_hidden_commands_run_but_are_not_listed_or_suggested(cli: CommandRegistry) -> None:
    @cli.register(hidden=True)
    def internal() -> str:
        return "ran"

    @cli.register()
    def public() -> str:
        return "p"

    assert cli.invoke("internal").stdout == "ran\n"
    listing = cli.invoke("--help").stdout
    assert "public" in listing and "internal" not in listing
    unknown = cli.invoke("internl").stderr
    assert unknown == "Unknown command 'internl'.\nTry 'app --help' for help.\n"
    assert cli.get("internal").hidden is True


def test_deprecated_option_warns_once_on_stderr_when_used(cli: CommandRegistry) -> None:
    @cli.register()
    def run(old: Annotated[int, Option("-o", deprecated="use --new instead")] = 0,
            new: int = 0) -> int:
        return old + new

    used = cli.invoke("run -o 2 -o 3")
    assert used.return_value == 3
    assert used.stderr == "app run: warning: option '-o' is deprecated; use --new instead\n"
    quiet = cli.invoke("run --new 1")
    assert quiet.stderr == "" and quiet.return_value == 1
    assert "deprecated; use --new instead" in cli.invoke("run --help").stdout


def test_deprecated_flag_and_count(cli: CommandRegistry) -> None:
    @cli.register()
    def run(force: Annotated[bool, Option(deprecated=True)] = False,
            verbose: Annotated[int, Option("-v", count=True, deprecated=True)] = 0) -> str:
        return f"{force} {verbose}"

    used = cli.invoke("run --force -vv")
    assert used.stdout == "True 2\n"
    assert used.stderr.splitlines() == [
        "app run: warning: option '--force' is deprecated",
        "app run: warning: option '-v' is deprecated",
    ]


def test_deprecated_command_warns_and_still_runs(cli: CommandRegistry) -> None:
    @cli.register(deprecated="use 'sync' instead", description="Old sync")
    def pull() -> str:
        return "pulled"

    result = cli.invoke("pull")
    assert (result.exit_code, result.stdout) == (0, "pulled\n")
    assert result.stderr == "app pull: warning: command 'pull' is deprecated; use 'sync' instead\n"
    assert "Old sync (deprecated; use 'sync' instead)" in cli.invoke("--help").stdout


def test_deprecated_true_on_a_grouped_command(cli: CommandRegistry) -> None:
    @cli.group("db").register(deprecated=True)
    def reset() -> None: ...

    warning = "app db reset: warning: command 'db reset' is deprecated\n"
    assert cli.invoke("db reset").stderr == warning


# -- mutually exclusive -------------------------------------------------------------------


def _formats(cli: CommandRegistry) -> None:
    @cli.register(mutually_exclusive=[("json", "csv"), ("quiet", "verbose")])
    def export(json: bool = False, csv: bool = False, quiet: bool = False,
               verbose: Annotated[int, Option("-v", count=True)] = 0,
               limit: int = 0) -> str:
        return f"{json} {csv} {quiet} {verbose} {limit}"


@pytest.mark.parametrize(("argv", "stderr"), [
    ("--json --csv", "argument --csv: not allowed with argument --json"),
    ("--csv --json", "argument --json: not allowed with argument --csv"),
    ("--quiet -v", "argument -v/--verbose: not allowed with argument --quiet"),
])
def test_mutually_exclusive_options_are_a_usage_error(
    cli: CommandRegistry, argv: str, stderr: str
) -> None:
    _formats(cli)
    result = cli.invoke(f"export {argv}")
    assert (result.exit_code, result.stderr) == (
        2, f"app export: error: {stderr}\nTry 'app export --help' for help.\n")


@pytest.mark.parametrize("argv", ["", "--json", "--csv --quiet", "--json -vv --limit 3"])
def test_mutually_exclusive_options_alone_are_fine(cli: CommandRegistry, argv: str) -> None:
    _formats(cli)
    assert cli.invoke(f"export {argv}").exit_code == 0


def test_mutually_exclusive_options_from_env_do_not_conflict(
    cli: CommandRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    @cli.register(mutually_exclusive=[("json", "csv")])
    def export(json: Annotated[bool, Env("APP_JSON")] = False, csv: bool = False) -> str:
        return f"{json} {csv}"

    monkeypatch.setenv("APP_JSON", "1")
    assert cli.invoke("export --csv").stdout == "True True\n"
    assert "[--json | --csv]" in cli.invoke("export --help").stdout


# -- registration errors --------------------------------------------------------------------


def _register(cli: CommandRegistry, handler: Any, **kwargs: Any) -> None:
    cli.register("cmd", **kwargs)(handler)


def _h1(help_: Annotated[bool, Option("-h")] = False) -> None: ...
def _collide(a: Annotated[int, Option("-x")] = 0, b: Annotated[int, Option("-x")] = 0) -> None: ...
def _long(a: Annotated[int, Option("--b")] = 0, b: int = 0) -> None: ...
def _noform(a: Annotated[int, Option("--no-c")] = 0, c: bool = True) -> None: ...
def _count_str(v: Annotated[str, Option(count=True)] = "") -> None: ...
def _count_bool(v: Annotated[bool, Option(count=True)] = False) -> None: ...
def _count_list(v: Annotated[list[int], Option(count=True)] = []) -> None: ...  # noqa: B006
def _bad_name(v: Annotated[int, Option("output")] = 0) -> None: ...
def _bad_short(v: Annotated[int, Option("-ab")] = 0) -> None: ...
def _digit_short(v: Annotated[int, Option("-1")] = 0) -> None: ...
def _not_str(v: Annotated[int, Option(5)] = 0) -> None: ...  # type: ignore[arg-type]
def _help_long(v: Annotated[int, Option("--help")] = 0) -> None: ...


def _req_flag(force: Annotated[bool, Option(required=True)] = False) -> None: ...
def _metavar_flag(force: Annotated[bool, Option(metavar="F")] = False) -> None: ...
def _req_count(v: Annotated[int, Option(count=True, required=True)] = 0) -> None: ...
def _prompt_only_option(
    s: Annotated[str, Option("-s"), Prompt("S", option=False)] = "",
) -> None: ...


class _Service:
    pass


def _on_service(s: Annotated[_Service, Option("-s")]) -> None: ...


@pytest.mark.parametrize(("handler", "message"), [
    (_h1, "parameter 'help_': '-h' is reserved for help"),
    (_help_long, "parameter 'v': '--help' is reserved for help"),
    (_collide, "parameter 'b': option '-x' is already used by parameter 'a'"),
    (_long, "parameters 'a' and 'b' would both be --b"),
    (_noform, "parameters 'a' and 'c' would both be --no-c"),
    (_count_str, "parameter 'v': count=True needs an int parameter, not str"),
    (_count_bool, "parameter 'v': count=True needs an int parameter, not bool"),
    (_count_list, "parameter 'v': count=True needs an int parameter"),
    (_bad_name, "parameter 'v': invalid option name 'output'"),
    (_bad_short, "parameter 'v': invalid option name '-ab'"),
    (_digit_short, "parameter 'v': invalid option name '-1'"),
    (_not_str, "parameter 'v': option name 5 is not a string"),
    (_on_service, "parameter 's': Option() on _Service"),
    (_req_flag, "parameter 'force': required=True does not apply to a flag"),
    (_metavar_flag, "parameter 'force': metavar= does not apply to a flag"),
    (_req_count, "parameter 'v': required=True does not apply to count=True"),
    (_prompt_only_option, "parameter 's': Option() on a Prompt(option=False) parameter"),
])
def test_bad_options_raise_at_registration_naming_the_parameter(
    cli: CommandRegistry, handler: Any, message: str
) -> None:
    with pytest.raises(RegistrationError) as caught:
        _register(cli, handler)
    assert message in str(caught.value)
    assert isinstance(caught.value, FrameworkError)
    assert not cli.commands  # nothing half-registered


def _pair(json: bool = False, csv: bool = False, name: str = "", *, pos: int = 0) -> None: ...
def _with_required(json: bool = False, need: Annotated[int, Option()] = 0, x: str = "") -> None:
    ...
def _with_positional(json: bool, csv: bool, target: str) -> None: ...


@pytest.mark.parametrize(("handler", "groups", "message"), [
    (_pair, [("json",)], "needs two or more parameters"),
    (_pair, [("json", "json")], "needs two or more parameters"),
    (_pair, [("json", "xml")], "names 'xml', which is not a parameter"),
    (_pair, [("json", "csv"), ("csv", "name")], "parameter 'csv' is in two groups"),
    (_pair, ["json"], "group \\('json',\\) needs two or more parameters"),
    (_pair, [5], "takes groups of parameter names"),
    (_with_positional, [("json", "target")], "parameter 'target' is not an option or flag"),
])
def test_bad_mutually_exclusive_groups_raise_at_registration(
    cli: CommandRegistry, handler: Any, groups: Any, message: str
) -> None:
    with pytest.raises(RegistrationError, match=message):
        _register(cli, handler, mutually_exclusive=groups)


def test_a_required_option_cannot_be_mutually_exclusive(cli: CommandRegistry) -> None:
    def run(a: Annotated[str, Option()], b: str = "") -> None: ...

    with pytest.raises(RegistrationError, match="parameter 'a' is required"):
        _register(cli, run, mutually_exclusive=[("a", "b")])


def test_mutually_exclusive_accepts_one_flat_group_and_dashed_names(cli: CommandRegistry) -> None:
    @cli.register(mutually_exclusive=("dry-run", "force"))
    def run(dry_run: bool = False, force: bool = False) -> None: ...

    assert cli.get("run").exclusive == (("dry_run", "force"),)
    assert cli.invoke("run --dry-run --force").exit_code == 2


def test_merge_keeps_the_new_command_settings(cli: CommandRegistry) -> None:
    other = CommandRegistry()

    @other.register(hidden=True, deprecated=True, confirm="Sure?",
                    mutually_exclusive=[("a", "b")])
    def run(a: bool = False, b: bool = False) -> None: ...

    cli.merge(other)
    entry = cli.get("run")
    assert (entry.hidden, entry.deprecated, entry.confirm, entry.exclusive) == (
        True, True, "Sure?", (("a", "b"),))


@pytest.mark.parametrize("argv", ["run x -h", "run -h", "run -vh", "run --help x"])
def test_help_inside_a_command_shows_the_full_usage(cli: CommandRegistry, argv: str) -> None:
    @cli.register()
    def run(target: str, verbose: Annotated[int, Option("-v", count=True)] = 0,
            limit: int = 3) -> None: ...

    out = cli.invoke(argv).stdout
    assert out.startswith("usage: app run [-h] [-v] [--limit INT] target\n")


def test_options_between_positionals_still_parse(cli: CommandRegistry) -> None:
    @cli.register()
    def copy(source: str, target: str, verbose: Annotated[int, Option("-v", count=True)] = 0,
             mode: Annotated[str, Option("-m")] = "a") -> str:
        return f"{source} {target} {verbose} {mode}"

    assert cli.invoke("copy -v a -m b c -v").stdout == "a c 2 b\n"
    bad = cli.invoke("copy a")
    assert bad.stderr.startswith("app copy: error: the following arguments are required: target")
