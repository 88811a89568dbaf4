"""Issue 17: the completion scripts run in the real bash, zsh and fish.

Every user string (names, aliases, choices, help text) is hostile here: quotes, a trailing
backslash, ``$(...)`` and backticks. The scripts must complete them exactly and never run
them. CI installs the shells (``.ci/run``); under ``CI=true`` a missing shell fails.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from registers.cli import CommandRegistry

HOSTILE = ["it's", "$(touch PWNED)", "`touch PWNED`", "a b", '"q"', "back\\", "*", "semi;colon"]

APP = textwrap.dedent(
    f"""
    import enum
    from pathlib import Path
    from typing import Literal

    from registers.cli import CommandRegistry


    class Color(enum.Enum):
        RED = "red"
        BLUE = "blue"


    cli = CommandRegistry()


    @cli.register(ops=["-g", "--greet"], description="Greet it's `x` $(touch PWNED)\\\\")
    def greet(name: str, color: Color = Color.RED, out: Path = Path("x"), loud: bool = False,
              mood: Literal[{", ".join(repr(h) for h in HOSTILE)}] = "*") -> str:
        return "hi " + name


    deploy = cli.group("deploy", ops=["-d"], description="Deploy; it's done\\\\")


    @deploy.register(ops=["svc"], description="Deploy a service")
    def service(name: str, replicas: int = 1) -> None: ...


    @deploy.register()
    def status() -> None: ...


    cli.run()
    """
)


def _shell(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{name} is not installed (.ci/run installs it)")
        pytest.skip(f"{name} is not installed")
    return path


@pytest.fixture
def app(tmp_path: Path) -> Path:
    (tmp_path / "app.py").write_text(APP)
    return tmp_path / "app.py"


def _script(app: Path, shell: str) -> str:
    result = subprocess.run([sys.executable, str(app), "--completion", shell],
                            capture_output=True, text=True, check=True)
    return result.stdout


def _run(argv: list[str], cwd: Path) -> list[str]:
    result = subprocess.run(argv, capture_output=True, text=True, cwd=cwd, timeout=60)
    assert result.returncode == 0, result.stderr
    assert not (cwd / "PWNED").exists()
    return result.stdout.splitlines()


CASES = [
    ([""], ["greet", "deploy"]),
    (["gr"], ["greet"]),
    (["-"], ["-h", "--help", "--completion", "-g", "--greet", "-d"]),
    (["greet", "x", "--c"], ["--color"]),
    (["-g", "x", "--color", ""], ["red", "blue"]),
    (["greet", "x", "--mood", ""], HOSTILE),
    (["greet", "x", "--mood", "it"], ["it's"]),
    (["-d", ""], ["service", "svc", "status"]),
    (["d", ""], ["service", "svc", "status"]),
    (["deploy", "s"], ["service", "svc", "status"]),
    (["-d", "svc", "--"], ["--help", "--replicas"]),
    (["--completion", ""], ["bash", "zsh", "fish"]),
]


def _bash_probe(script: str, words: list[str]) -> str:
    line = " ".join("'" + w.replace("'", "'\\''") + "'" for w in ["app.py", *words])
    return (f"{script}\nCOMP_WORDS=({line}); COMP_CWORD={len(words)}; _registers_app_py; "
            "for c in \"${COMPREPLY[@]}\"; do eval \"printf '%s\\n' $c\"; done")


@pytest.mark.parametrize(("words", "expected"), CASES)
def test_bash_completes(app: Path, words: list[str], expected: list[str]) -> None:
    bash = _shell("bash")
    out = _run([bash, "--norc", "-c", _bash_probe(_script(app, "bash"), words)], app.parent)
    assert sorted(out) == sorted(expected)


@pytest.mark.parametrize(("words", "expected"), CASES)
def test_zsh_completes(app: Path, words: list[str], expected: list[str]) -> None:
    zsh = _shell("zsh")
    script = _script(app, "zsh")
    line = " ".join("'" + w.replace("'", "'\\''") + "'" for w in ["app.py", *words])
    # compadd and _files are zsh's; stand-ins record what the script hands them
    probe = (f"{script}\ncompadd() {{ [[ $1 == -- ]] && shift; print -rl -- \"$@\" }}\n"
             f"_files() {{ print -r -- FILES }}\n"
             f"words=({line}); CURRENT={len(words) + 1}; _registers_app_py_zsh")
    out = _run([zsh, "-f", "-c", probe], app.parent)
    assert sorted(out) == sorted(expected)


@pytest.mark.parametrize(("words", "expected"), CASES)
def test_fish_completes(app: Path, words: list[str], expected: list[str]) -> None:
    fish = _shell("fish")
    (app.parent / "comp.fish").write_text(_script(app, "fish"))
    line = " ".join(["app.py", *words])  # typed as is: no word here needs quoting
    out = _run([fish, "--no-config", "-c",
                f"source comp.fish; complete -C {_fish_word(line)}"], app.parent)
    got = sorted(o.split("\t")[0] for o in out)
    assert got == sorted(expected)


def _fish_word(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def test_fish_shows_descriptions_once_per_candidate(app: Path) -> None:
    fish = _shell("fish")
    (app.parent / "comp.fish").write_text(_script(app, "fish"))
    out = _run([fish, "--no-config", "-c", "source comp.fish; complete -C 'app.py '"],
               app.parent)
    assert sorted(out) == sorted([
        "greet\tGreet it's `x` $(touch PWNED)\\", "deploy\tDeploy; it's done\\"])


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_path_option_completes_files(app: Path, shell: str) -> None:
    binary = _shell(shell)
    (app.parent / "notes.txt").write_text("")
    script = _script(app, shell)
    if shell == "fish":
        (app.parent / "comp.fish").write_text(script)
        out = _run([binary, "--no-config", "-c",
                    "source comp.fish; complete -C 'app.py greet x --out no'"], app.parent)
        assert out == ["notes.txt"]
    elif shell == "bash":
        probe = (f"{script}\nCOMP_WORDS=(app.py greet x --out no); COMP_CWORD=4; "
                 "_registers_app_py; echo \"files=$_registers_files n=${#COMPREPLY[@]}\"")
        # bash completes file names itself (complete -o default) when COMPREPLY is empty
        assert _run([binary, "--norc", "-c", probe], app.parent) == ["files= n=0"]
        assert "complete -o default -F _registers_app_py 'app.py' 'app'" in script
    else:
        probe = (f"{script}\n_files() {{ print -r -- FILES }}\n"
                 "words=(app.py greet x --out no); CURRENT=5; _registers_app_py_zsh")
        assert _run([binary, "-f", "-c", probe], app.parent) == ["FILES"]


# -- the documented one-line install, for a script run as ``python app.py`` --------------


def test_bash_one_line_install_for_python_app_py(app: Path) -> None:
    bash = _shell("bash")
    install = f'app() {{ "{sys.executable}" "{app}" "$@"; }}; eval "$(app --completion bash)"'
    probe = (f"{install}\nCOMP_WORDS=(app gr); COMP_CWORD=1; _registers_app_py; "
             "echo \"${COMPREPLY[@]}\"; complete -p app; app greet Ann")
    out = _run([bash, "--norc", "-c", probe], app.parent)
    assert out == ["greet", "complete -o default -F _registers_app_py app", "hi Ann"]


def test_zsh_one_line_install_for_python_app_py(app: Path) -> None:
    zsh = _shell("zsh")
    install = f'app() {{ "{sys.executable}" "{app}" "$@" }}; eval "$(app --completion zsh)"'
    probe = (f"{install}\nprint -r -- $_comps[app]\n"
             "compadd() { [[ $1 == -- ]] && shift; print -rl -- \"$@\" }\n"
             "words=(app -d s); CURRENT=3; $_comps[app]; app greet Ann")
    out = _run([zsh, "-f", "-c", probe], app.parent)
    assert out == ["_registers_app_py_zsh", "service", "svc", "status", "hi Ann"]


def test_fish_one_line_install_for_python_app_py(app: Path) -> None:
    fish = _shell("fish")
    install = (f"function app; {_fish_word(sys.executable)} {_fish_word(str(app))} $argv; end; "
               "app --completion fish | source")
    out = _run([fish, "--no-config", "-c", f"{install}; complete -C 'app -d s'; app greet Ann"],
               app.parent)
    assert [o.split("\t")[0] for o in out] == ["service", "status", "svc", "hi Ann"]


def test_installed_program_name_is_completed_as_is() -> None:
    cli = CommandRegistry(prog="my-tool")
    cli.register("run")(lambda: None)
    for shell in ("bash", "zsh", "fish"):
        script = cli.invoke(["--completion", shell]).stdout
        assert "'my-tool'" in script and "'my-tool.py'" not in script


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_option_equals_value_completes_the_value(app: Path, shell: str) -> None:
    binary = _shell(shell)
    script = _script(app, shell)
    if shell == "bash":  # bash splits the word at "="
        probe = (f"{script}\nCOMP_WORDS=(app.py greet x --color = b); COMP_CWORD=5; "
                 "_registers_app_py; printf '%s\\n' \"${COMPREPLY[@]}\"")
        assert _run([binary, "--norc", "-c", probe], app.parent) == ["blue"]
    elif shell == "zsh":
        probe = (f"{script}\ncompadd() {{ [[ $1 == -- ]] && shift; print -rl -- \"$@\" }}\n"
                 "words=(app.py greet x --mood=it); CURRENT=4; _registers_app_py_zsh")
        assert _run([binary, "-f", "-c", probe], app.parent) == ["--mood=it's"]
    else:
        (app.parent / "comp.fish").write_text(script)
        out = _run([binary, "--no-config", "-c",
                    "source comp.fish; complete -C 'app.py greet x --color=b'"], app.parent)
        assert out == ["--color=blue"]


@pytest.mark.parametrize(
    ("typed", "completed"),
    [("app.py gr", "app.py greet"), ("app.py -d sv", "app.py -d svc"),
     ("app.py greet x --mood it", "app.py greet x --mood it\\'s")],
)
def test_zsh_completes_through_its_real_completion_system(
    app: Path, typed: str, completed: str
) -> None:
    """An interactive zsh on a pseudo-terminal (zsh/zpty), compinit loaded, TAB pressed."""
    zsh = _shell("zsh")
    (app.parent / "comp.zsh").write_text(_script(app, "zsh"))
    # wait for the completed line (quotes and backslashes as "?"), then check it exactly
    pattern = "*" + "".join("?" if c in "\\'*?[]" else c for c in completed) + "*"
    driver = textwrap.dedent(
        f"""
        zmodload zsh/zpty
        zpty -b z 'zsh -f -i'
        zpty -w z 'PS1="> "; autoload -Uz compinit; compinit -u -D'
        zpty -w z 'source ./comp.zsh; print RE""ADY'
        zpty -r z out '*READY*'
        zpty -w -n z {_zsh_word(typed + chr(9))}
        zpty -r z out {_zsh_word(pattern)} && print -r -- "$out"
        zpty -d z
        """
    )
    result = subprocess.run([zsh, "-f", "-c", driver], capture_output=True, text=True,
                            cwd=app.parent, timeout=60)
    assert completed in result.stdout, result.stdout + result.stderr
    assert not (app.parent / "PWNED").exists()


def _zsh_word(text: str) -> str:
    return "$'" + text.replace("\\", "\\\\").replace("'", "\\'").replace("\t", "\\t") + "'"
