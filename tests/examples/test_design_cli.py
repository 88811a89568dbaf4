"""Every CLI snippet of the design document, run as a real subprocess.

The snippet files live in ``examples/design_cli/`` (see its README for the mapping).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "design_cli"


def run(script: str, *args: str) -> subprocess.CompletedProcess[str]:
    path = EXAMPLES / script
    return subprocess.run(
        [sys.executable, str(path), *args],
        cwd=path.parent,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("argv", [["greet", "Alice"], ["--greet", "Alice"], ["g", "Alice"]])
def test_quick_start(argv: list[str]) -> None:
    result = run("quick_start.py", *argv)
    assert (result.returncode, result.stdout, result.stderr) == (0, "Hello, Alice!\n", "")


def test_quick_start_help_lists_the_command_and_its_aliases() -> None:
    result = run("quick_start.py", "--help")
    assert result.returncode == 0
    assert "greet, -g, --greet  Greet someone by name" in result.stdout


def test_quick_start_bad_input_is_one_line_exit_2() -> None:
    unknown = run("quick_start.py", "gret", "Alice")
    assert unknown.returncode == 2
    assert unknown.stderr == (
        "Unknown command 'gret'. Did you mean 'greet'?\nTry 'quick_start.py --help' for help.\n"
    )
    missing = run("quick_start.py", "greet")
    assert missing.returncode == 2
    assert missing.stderr == (
        "quick_start.py greet: error: the following arguments are required: name\n"
        "Try 'quick_start.py greet --help' for help.\n"
    )


def test_argument_types() -> None:
    result = run(
        "argument_types.py", "create-report", "Q3 Summary", "12", "--verbose", "--output",
        "./reports",
    )
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


def test_argument_types_bad_int_names_the_argument() -> None:
    result = run("argument_types.py", "create-report", "Q3 Summary", "twelve")
    assert result.returncode == 2
    assert result.stderr == (
        "argument_types.py create-report: error: argument pages: invalid int value: 'twelve'\n"
        "Try 'argument_types.py create-report --help' for help.\n"
    )


def test_argument_types_help_shows_types_and_defaults() -> None:
    out = run("argument_types.py", "create-report", "--help").stdout
    assert "title" in out and "(type: int)" in out
    assert "--verbose" in out and "--output TEXT" in out


@pytest.mark.parametrize("argv", [["sync", "production"], ["--sync", "production"],
                                  ["s", "production"]])
def test_aliases(argv: list[str]) -> None:
    result = run("aliases.py", *argv)
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


def test_dependency_injection() -> None:
    result = run("dependency_injection.py", "seed", "100")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "Inserted 100 fixtures into sqlite:///app.db\n"


def test_dependency_injection_hides_the_service_from_the_command_line() -> None:
    out = run("dependency_injection.py", "seed", "--help").stdout
    assert "count" in out and "db" not in out.replace("dependency_injection", "")


def test_middleware_snippet_as_written_has_no_commands() -> None:
    result = run("cli_middleware.py")
    assert result.returncode == 2
    assert result.stderr == "cli_middleware.py: no commands are registered.\n"


def test_middleware_hooks_run_and_redact_secrets() -> None:
    result = run("cli_middleware_with_command.py", "login", "ann", "hunter2")
    assert result.returncode == 0
    assert result.stdout == "audit: login -> 'Welcome, ann!'\nWelcome, ann!\n"
    assert "registers.cli DEBUG Running command 'login' with arguments" in result.stderr
    assert "'password': '***'" in result.stderr
    assert "hunter2" not in result.stderr
    assert "registers.cli DEBUG Command 'login' finished in " in result.stderr


@pytest.mark.parametrize(
    ("argv", "stdout"),
    [
        (["create-user", "alice", "--admin"], "Created admin alice\n"),
        (["export", "sales"], '{\n  "report": "sales",\n  "format": "csv"\n}\n'),
        (["-e", "sales", "--format", "json"], '{\n  "report": "sales",\n  "format": "json"\n}\n'),
        (["deploy", "prod", "--dry-run"], "Deploying to prod (dry run)\n"),
    ],
)
def test_plugin_system(argv: list[str], stdout: str) -> None:
    result = run("plugin_app/main.py", *argv)
    assert (result.returncode, result.stdout, result.stderr) == (0, stdout, "")


def test_plugin_system_help_lists_discovered_commands() -> None:
    out = run("plugin_app/main.py", "--help").stdout
    for line in ("create-user  Create a user", "export, -e   Export a report", "deploy"):
        assert line in out


def test_error_handling_wrapper_keeps_the_signature() -> None:
    ok = run("error_handling.py", "deploy", "prod")
    assert (ok.returncode, ok.stdout, ok.stderr) == (0, "", "")
    missing = run("error_handling.py", "deploy")
    assert missing.returncode == 2
    assert "the following arguments are required: env" in missing.stderr
