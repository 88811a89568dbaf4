"""Shell completion scripts for ``app --completion bash|zsh|fish``.

The script is generated from the registry when asked for (this module is imported only
then), so completion costs nothing at normal start-up. It completes command and group
names, aliases, option names, Literal/Enum choices and file paths.

Every user string (names, aliases, choices, help) is quoted in the script, so nothing
in it is ever expanded or run by the shell. Install (one line each; see docs/cli.md for a
script run as ``python app.py``)::

    eval "$(app --completion bash)"       # bash: in ~/.bashrc
    eval "$(app --completion zsh)"        # zsh: in ~/.zshrc (native compdef)
    app --completion fish | source        # fish: in ~/.config/fish/config.fish
"""

from __future__ import annotations

import os

from .signature import ARGUMENT, FLAG, OPTION, spellings_of

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from .registry import CommandEntry, CommandRegistry
    from .signature import CommandParam

__all__ = ["completion_script"]

_PATH_TYPES = frozenset({"path", "file"})


class _Node:
    """What can follow one command path: words, options and their values."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.words: list[str] = []  # sub-commands and their aliases
        self.children: dict[str, str] = {}  # spelling -> child path
        self.options: list[str] = ["-h", "--help"]
        self.value_choices: dict[str, list[str]] = {}  # option -> choices
        self.path_options: list[str] = []
        self.flags: list[str] = []
        self.positional_choices: list[str] = []
        self.help: dict[str, str] = {}


def _command_node(entry: CommandEntry) -> _Node:
    node = _Node(entry.path)
    _add_params(node, entry.params)
    if entry.confirm:
        node.options.append("--yes")
        node.flags.append("--yes")
    return node


def _add_params(node: _Node, params: tuple[CommandParam, ...]) -> None:
    for param in params:
        if param.hidden:  # accepted, never offered
            continue
        choices = list(param.info.choices or ())
        if param.role == ARGUMENT:
            node.positional_choices.extend(choices)
            continue
        spellings = list(spellings_of(param))
        if param.role == FLAG or param.count:
            node.options.extend(spellings)
            node.flags.extend(spellings)
        elif param.role == OPTION:
            node.options.extend(spellings)
            for spelling in spellings:
                if choices:
                    node.value_choices[spelling] = choices
                elif param.info.name in _PATH_TYPES:
                    node.path_options.append(spelling)
        for spelling in spellings:
            node.help[spelling] = param.help


def _nodes(registry: CommandRegistry, root: bool = True) -> list[_Node]:
    node = _Node(registry.path)
    if root:
        node.options += ["--completion"] + (["--version"] if registry.version else [])
        node.value_choices["--completion"] = ["bash", "zsh", "fish"]
        if registry.root_callback is not None:
            _add_params(node, registry.root_callback.params)
    found = [node]
    members: list[tuple[str, tuple[str, ...], str, str, bool]] = [
        (e.name, e.ops, e.path, e.help_text, e.hidden) for e in registry.commands.values()
    ] + [(g.name, g.ops, g.path, g.help_text, False) for g in registry.groups.values()]
    for name, ops, path, summary, hidden in members:
        node.help[name] = summary
        for spelling in (name, *ops):
            node.children[spelling] = path
            if hidden:  # still followed when typed, never offered
                continue
            if not spelling.startswith("-") or spelling == name:
                node.words.append(spelling)
            else:
                node.options.append(spelling)
                # ``app d svc`` works like ``app -d svc``: follow the bare spelling too
                node.children.setdefault(spelling.lstrip("-"), path)
    for entry in registry.commands.values():
        found.append(_command_node(entry))
    for group in registry.groups.values():
        found.extend(_nodes(group, root=False))
    return found


def _sh(text: str) -> str:
    """``text`` as one single-quoted bash/zsh word (nothing inside is expanded)."""
    return "'" + text.replace("'", "'\\''") + "'"


def _fish(text: str) -> str:
    """``text`` as one single-quoted fish word."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _func_name(prog: str) -> str:
    return "_registers_" + "".join(c if c.isalnum() else "_" for c in prog)


def _names(prog: str) -> list[str]:
    """The command names to complete: ``app.py`` also completes as ``app``."""
    names = [prog]
    if prog.endswith(".py") and len(prog) > 3:
        names.append(prog[:-3])
    return names


def _sh_array(var: str, items: list[str]) -> str:
    return f"{var}=({' '.join(_sh(i) for i in items)})"


def _sh_core(registry: CommandRegistry, func: str) -> str:
    """Completion logic shared by bash and zsh: plain functions, every user string quoted.

    ``{func}_complete CUR WORD...`` fills ``_registers_reply`` with the candidates for
    CUR after the words typed so far, or sets ``_registers_files=1`` for a path.
    """
    nodes = _nodes(registry)
    steps, words, options, values = [], [], [], []
    for node in nodes:
        for spelling, child in node.children.items():
            steps.append(f"        {_sh(node.path + ' ' + spelling)}) REPLY={_sh(child)} ;;")
        words.append(f"        {_sh(node.path)}) "
                     f"{_sh_array('_registers_reply', node.words + node.positional_choices)} ;;")
        options.append(f"        {_sh(node.path)}) "
                       f"{_sh_array('_registers_reply', node.options)} ;;")
        for option, choices in node.value_choices.items():
            values.append(f"        {_sh(node.path + ' ' + option)}) "
                          f"{_sh_array('_registers_reply', choices)} ;;")
        for option in node.path_options:
            values.append(f"        {_sh(node.path + ' ' + option)}) _registers_files=1 ;;")
    nl = "\n"
    return f"""{func}_step() {{
    case "$1 $2" in
{nl.join(steps)}
        *) return 1 ;;
    esac
}}
{func}_words() {{
    case "$1" in
{nl.join(words)}
    esac
}}
{func}_options() {{
    case "$1" in
{nl.join(options)}
    esac
}}
{func}_values() {{
    case "$1 $2" in
{nl.join(values)}
        *) return 1 ;;
    esac
}}
{func}_complete() {{
    local cur="$1" ctx="" prev="" w c REPLY
    local -a _registers_all
    shift
    for w in "$@"; do
        REPLY=""
        if {func}_step "$ctx" "$w"; then ctx="$REPLY"; fi
        prev="$w"
    done
    _registers_reply=()
    _registers_prefix=""
    case "$cur" in
        --*=*) prev="${{cur%%=*}}"; _registers_prefix="$prev="; cur="${{cur#*=}}" ;;
    esac
    if [ -n "$prev" ] && {func}_values "$ctx" "$prev"; then
        :
    elif [ -n "$_registers_prefix" ]; then
        return 0
    else
        case "$cur" in
            -*) {func}_options "$ctx" ;;
            *) {func}_words "$ctx" ;;
        esac
    fi
    _registers_all=("${{_registers_reply[@]}}")
    _registers_reply=()
    for c in "${{_registers_all[@]}}"; do
        case "$c" in "$cur"*) _registers_reply+=("$_registers_prefix$c") ;; esac
    done
}}
"""


def _bash(registry: CommandRegistry, prog: str) -> str:
    func = _func_name(prog)
    names = " ".join(_sh(n) for n in _names(prog))
    return f"""# bash completion for {_one_line(prog)} (generated by registers.cli)
# install: eval "$({_one_line(prog)} --completion bash)"   (e.g. in ~/.bashrc)
{_sh_core(registry, func)}
{func}() {{
    local _registers_files=0 _registers_prefix="" c q n=$((COMP_CWORD - 1))
    local -a _registers_reply
    COMPREPLY=()
    # bash splits --color=red at "=": complete the value of the option before it
    [ "$n" -ge 1 ] && [ "${{COMP_WORDS[n]}}" = "=" ] && n=$((n - 1))
    {func}_complete "${{COMP_WORDS[COMP_CWORD]}}" "${{COMP_WORDS[@]:1:n}}"
    [ "$_registers_files" = 1 ] && return 0  # -o default: bash completes file names
    for c in "${{_registers_reply[@]}}"; do
        printf -v q '%q' "$c"
        COMPREPLY+=("$q")
    done
}}
complete -o default -F {func} {names}
"""


def _zsh(registry: CommandRegistry, prog: str) -> str:
    func = _func_name(prog)
    names = " ".join(_sh(n) for n in _names(prog))
    return f"""# zsh completion for {_one_line(prog)} (generated by registers.cli)
# install: eval "$({_one_line(prog)} --completion zsh)"   (e.g. in ~/.zshrc)
{_sh_core(registry, func)}
{func}_zsh() {{
    local _registers_files=0 _registers_prefix=""
    local -a _registers_reply
    {func}_complete "${{words[CURRENT]}}" "${{(@)words[2,CURRENT-1]}}"
    if (( _registers_files )); then
        _files
        return
    fi
    compadd -- "${{_registers_reply[@]}}"
}}
if ! (( $+functions[compdef] )); then
    autoload -Uz compinit && compinit -u
fi
compdef {func}_zsh {names}
"""


def _fish_lines(items: list[tuple[str, str]]) -> str:
    """``printf`` lines printing each candidate (``word<TAB>description`` for fish)."""
    lines = []
    for item, summary in items:
        text = _one_line(item) + ("\t" + _one_line(summary) if summary.strip() else "")
        lines.append(f"        printf '%s\\n' {_fish(text)}")
    return "\n".join(lines)


def _fish_if(test: str, body: str) -> str:
    return f"    if test {test}\n{body}\n        return 0\n    end"


def _fish_script(registry: CommandRegistry, prog: str) -> str:
    func = "__" + _func_name(prog).lstrip("_")
    pair, one = '"$argv[1] $argv[2]" =', '"$argv[1]" ='
    steps, words, options, values = [], [], [], []
    for node in _nodes(registry):
        for spelling, child in node.children.items():
            steps.append(_fish_if(f"{pair} {_fish(node.path + ' ' + spelling)}",
                                  f"        echo {_fish(child)}"))
        items = [(w, node.help.get(w, "")) for w in node.words]
        items += [(c, "") for c in node.positional_choices]
        if items:
            words.append(_fish_if(f"{one} {_fish(node.path)}", _fish_lines(items)))
        opts = [(o, node.help.get(o, "")) for o in node.options]
        options.append(_fish_if(f"{one} {_fish(node.path)}", _fish_lines(opts)))
        for option, choices in node.value_choices.items():
            values.append(_fish_if(f"{pair} {_fish(node.path + ' ' + option)}",
                                   _fish_lines([(c, "") for c in choices])))
        for option in node.path_options:
            values.append(_fish_if(f"{pair} {_fish(node.path + ' ' + option)}",
                                   "        __fish_complete_path (commandline -ct)"))
    nl = "\n"
    commands = nl.join(f"complete -c {_fish(n)} -e\ncomplete -c {_fish(n)} -f "
                       f"-a '({func}_complete)'" for n in _names(prog))
    return f"""# fish completion for {_one_line(prog)} (generated by registers.cli)
# install: {_one_line(prog)} --completion fish | source   (e.g. in ~/.config/fish/config.fish)
function {func}_step
{nl.join(steps)}
    return 1
end
function {func}_words
{nl.join(words)}
end
function {func}_options
{nl.join(options)}
end
function {func}_values
{nl.join(values)}
    return 1
end
function {func}_complete
    set -l tokens (commandline -opc)
    set -l cur (commandline -ct)
    set -e tokens[1]
    set -l ctx ''
    set -l prev ''
    for w in $tokens
        set -l next ({func}_step "$ctx" "$w"); and set ctx $next
        set prev $w
    end
    if string match -q -r -- '^--[^=]+=' "$cur"
        set -l option (string split -m 1 -- = "$cur")
        {func}_values "$ctx" "$option[1]" | string replace -r -- '^' "$option[1]="
        return
    end
    if test -n "$prev"; and {func}_values "$ctx" "$prev"
        return
    end
    if string match -q -- '-*' "$cur"
        {func}_options "$ctx"
    else
        {func}_words "$ctx"
    end
end
{commands}
"""


_GENERATORS: dict[str, Callable[[CommandRegistry, str], str]] = {
    "bash": _bash,
    "zsh": _zsh,
    "fish": _fish_script,
}


def completion_script(registry: CommandRegistry, shell: str, *, prog: str | None = None) -> str:
    """The completion script for ``shell`` (``bash``, ``zsh`` or ``fish``).

    Raises:
        ValueError: Unknown shell.
    """
    if shell not in _GENERATORS:
        raise ValueError(f"unsupported shell {shell!r}; choose from {', '.join(_GENERATORS)}")
    name = os.path.basename(prog or registry.prog or "app")
    return _GENERATORS[shell](registry.root, name)
