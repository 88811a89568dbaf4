"""The demo application (examples/tasks.py), run end to end as a real program.

Every case runs ``python examples/tasks.py ...`` in a fresh working directory, so these
tests also prove that tasks persist in ``tasks.db`` there with no configuration.
"""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "examples" / "tasks.py"


class Run:
    def __init__(self, proc: subprocess.CompletedProcess[str]) -> None:
        self.exit_code = proc.returncode
        self.stdout = proc.stdout
        self.stderr = proc.stderr


@pytest.fixture
def tasks(tmp_path: Path):
    """Run the demo in ``tmp_path``: ``tasks("add", "x")`` -> a :class:`Run`."""
    env = {k: v for k, v in os.environ.items() if k != "REGISTERS_TASKS_DB"}

    def run(*args: str, extra_env: dict[str, str] | None = None) -> Run:
        proc = subprocess.run(
            [sys.executable, str(SCRIPT), *args],
            cwd=tmp_path,
            env={**env, **(extra_env or {})},
            capture_output=True,
            text=True,
            timeout=60,
        )
        return Run(proc)

    return run


def assert_usage_error(result: Run, *fragments: str) -> None:
    assert result.exit_code == 2, result.stderr
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in result.stderr


def table_rows(stdout: str) -> list[list[str]]:
    """The data rows of ``list`` output, each split on runs of two or more spaces."""
    lines = stdout.strip().splitlines()
    assert lines[0].split()[:3] == ["ID", "STATUS", "PRIORITY"]
    rows = []
    for line in lines[1:]:
        if not line.strip():
            break
        rows.append([cell for cell in line.split("  ") if cell.strip()])
    return [[cell.strip() for cell in row] for row in rows]


# --- the quick start ----------------------------------------------------------------


def test_quick_start_adds_and_lists_a_task(tasks, tmp_path: Path) -> None:
    added = tasks("add", "Write the docs", "--priority", "high")
    assert added.exit_code == 0, added.stderr
    assert added.stdout == "Added task 1: Write the docs\n"
    listed = tasks("list")
    assert listed.exit_code == 0, listed.stderr
    assert table_rows(listed.stdout) == [["1", "open", "high", "-", "-", "Write the docs"]]
    assert listed.stdout.rstrip().endswith("1 task")
    assert (tmp_path / "tasks.db").is_file()


def test_help_lists_every_command_without_creating_the_database(tasks, tmp_path: Path) -> None:
    result = tasks("--help")
    assert result.exit_code == 0
    for command in ("add", "list", "done", "remove", "stats"):
        assert command in result.stdout
    assert "Add a task." in result.stdout
    assert not (tmp_path / "tasks.db").exists()


def test_command_help_shows_choices_and_docstring_help(tasks) -> None:
    result = tasks("add", "--help")
    assert result.exit_code == 0
    assert "low" in result.stdout and "high" in result.stdout
    assert "What needs doing." in result.stdout
    assert "YYYY-MM-DD" in result.stdout


# --- persistence and commands -------------------------------------------------------


def test_tasks_persist_across_invocations(tasks) -> None:
    tasks("add", "First")
    tasks("add", "Second", "--priority", "low")
    tasks("done", "1")
    listed = tasks("list", "--status", "all")
    assert [row[:3] for row in table_rows(listed.stdout)] == [
        ["1", "done", "normal"],
        ["2", "open", "low"],
    ]


def test_add_with_due_date_and_tags(tasks) -> None:
    result = tasks("add", "Plan", "--due", "2031-02-03", "--tag", "work", "--tag", "q1")
    assert result.exit_code == 0, result.stderr
    rows = table_rows(tasks("list").stdout)
    assert rows == [["1", "open", "normal", "2031-02-03", "work,q1", "Plan"]]


def test_overdue_open_tasks_are_marked(tasks) -> None:
    yesterday = (date.today() - timedelta(days=1)).isoformat()
    tasks("add", "Late", "--due", yesterday)
    assert table_rows(tasks("list").stdout)[0][3] == f"{yesterday} !"


def test_list_hides_done_tasks_by_default(tasks) -> None:
    tasks("add", "Open one")
    tasks("add", "Finished one")
    tasks("done", "2")
    assert [row[0] for row in table_rows(tasks("list").stdout)] == ["1"]
    assert [row[0] for row in table_rows(tasks("list", "--status", "done").stdout)] == ["2"]


def test_list_filters_by_priority_and_search(tasks) -> None:
    tasks("add", "Write the docs", "--priority", "high")
    tasks("add", "Review docs")
    tasks("add", "Buy milk", "--priority", "high")
    by_priority = table_rows(tasks("list", "--priority", "high").stdout)
    assert [row[0] for row in by_priority] == ["1", "3"]
    by_text = table_rows(tasks("list", "--search", "DOCS").stdout)
    assert [row[0] for row in by_text] == ["1", "2"]
    both = table_rows(tasks("list", "--search", "docs", "--priority", "high").stdout)
    assert [row[0] for row in both] == ["1"]


def test_list_limit_shows_how_many_were_left_out(tasks) -> None:
    for title in ("a", "b", "c"):
        tasks("add", title)
    result = tasks("list", "--limit", "2")
    assert [row[0] for row in table_rows(result.stdout)] == ["1", "2"]
    assert result.stdout.rstrip().endswith("2 of 3 tasks")


def test_list_on_an_empty_database(tasks) -> None:
    result = tasks("list")
    assert result.exit_code == 0
    assert result.stdout.startswith("No tasks yet.")


def test_list_with_no_match(tasks) -> None:
    tasks("add", "Something")
    result = tasks("list", "--search", "nothing like it")
    assert result.exit_code == 0
    assert result.stdout.startswith("No tasks match")


def test_done_twice_is_not_an_error(tasks) -> None:
    tasks("add", "Once")
    assert tasks("done", "1").stdout == "Done: Once\n"
    again = tasks("done", "1")
    assert again.exit_code == 0
    assert again.stdout == "Task 1 was already done.\n"


def test_remove_deletes_for_good(tasks) -> None:
    tasks("add", "Keep")
    tasks("add", "Drop")
    removed = tasks("remove", "2")
    assert removed.exit_code == 0
    assert removed.stdout == "Removed task 2: Drop\n"
    assert [row[0] for row in table_rows(tasks("list", "--status", "all").stdout)] == ["1"]


def test_aliases_reach_their_commands(tasks) -> None:
    assert tasks("a", "Via alias").exit_code == 0
    assert tasks("d", "1").exit_code == 0
    assert table_rows(tasks("ls", "--status", "done").stdout)[0][0] == "1"
    assert tasks("rm", "1").exit_code == 0


def test_stats_counts_by_status_and_priority(tasks) -> None:
    tasks("add", "a", "--priority", "high")
    tasks("add", "b", "--priority", "high")
    tasks("add", "c", "--priority", "low", "--due", "2000-01-01")
    tasks("done", "1")
    result = tasks("stats")
    assert result.exit_code == 0
    counts = dict(line.split() for line in result.stdout.splitlines() if line.startswith("  "))
    assert counts == {
        "total": "3",
        "open": "2",
        "done": "1",
        "high": "1",
        "normal": "0",
        "low": "1",
        "overdue": "1",
    }


def test_database_path_can_be_overridden(tasks, tmp_path: Path) -> None:
    env = {"REGISTERS_TASKS_DB": str(tmp_path / "elsewhere.db")}
    assert tasks("add", "Hidden", extra_env=env).exit_code == 0
    assert (tmp_path / "elsewhere.db").is_file()
    assert not (tmp_path / "tasks.db").exists()
    assert table_rows(tasks("list", extra_env=env).stdout)[0][-1] == "Hidden"


# --- bad input: one line on stderr, non-zero exit, never a traceback -----------------


@pytest.mark.parametrize("command", ["done", "remove"])
def test_unknown_id_exits_1_with_one_line(tasks, command: str) -> None:
    tasks("add", "Only one")
    result = tasks(command, "7")
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr == "no task with id 7\n"


def test_bad_priority_is_a_usage_error(tasks) -> None:
    result = tasks("add", "x", "--priority", "urgent")
    assert_usage_error(result, "--priority", "urgent")
    lines = result.stderr.strip().splitlines()  # the error, then the Try line (issue 17)
    assert len(lines) == 2 and lines[1] == "Try 'tasks.py add --help' for help."


@pytest.mark.parametrize("value", ["2024-13-01", "tomorrow", "01/02/2024"])
def test_bad_date_is_a_usage_error(tasks, value: str) -> None:
    result = tasks("add", "x", "--due", value)
    assert_usage_error(result, "--due", value)
    # one error line, then the Try line every usage error ends with (issue 17)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 2 and lines[1] == "Try 'tasks.py add --help' for help."


def test_non_numeric_id_is_a_usage_error(tasks) -> None:
    assert_usage_error(tasks("done", "abc"), "task_id", "abc")


def test_unknown_command_suggests_the_close_one(tasks) -> None:
    result = tasks("lsit")
    assert_usage_error(result, "Unknown command 'lsit'", "Did you mean 'list'?")


def test_blank_title_is_rejected(tasks) -> None:
    result = tasks("add", "   ")
    assert_usage_error(result, "title")
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("bad", [["list", "--status", "finished"], ["list", "--limit", "0"]])
def test_bad_list_options_are_usage_errors(tasks, bad: list[str]) -> None:
    assert_usage_error(tasks(*bad))


def test_no_command_prints_help_and_exits_2(tasks) -> None:
    result = tasks()
    assert result.exit_code == 2
    assert "usage:" in result.stderr


def test_failed_commands_leave_the_data_alone(tasks) -> None:
    tasks("add", "Survivor")
    tasks("done", "99")
    tasks("add", "x", "--priority", "bogus")
    rows = table_rows(tasks("list", "--status", "all").stdout)
    assert rows == [["1", "open", "normal", "-", "-", "Survivor"]]
