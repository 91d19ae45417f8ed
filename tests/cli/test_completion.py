"""procmgmt completion: the scripts are generated from the parser and work in the shell.

Bash is sourced and its completion function called with COMP_WORDS set, as
bash calls it on TAB. Zsh and fish are checked where they are installed:
zsh loads the script after compinit and registers it; fish completes
through ``complete -C``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from procmgmt.cli.completion import FILE, NAMES, SHELLS, commands
from procmgmt.cli.main import build_parser
from tests.cli.test_cli import run
from tests.cli.test_generations_cli import recorded


def env() -> dict[str, str]:
    """The environment of a shell that finds this tree's ``procmgmt`` first."""
    bindir = os.path.dirname(sys.executable)
    assert os.path.exists(os.path.join(bindir, "procmgmt")), "run the tests from the venv"
    return {**os.environ, "PATH": f"{bindir}:{os.environ.get('PATH', '')}"}


def script(shell: str, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> Path:
    rc, out, _ = run(capsys, "completion", shell)
    assert rc == 0
    path = tmp_path / f"procmgmt.{shell}"
    path.write_text(out)
    return path


def test_what_the_parser_declares() -> None:
    """Commands, their options and what completes arguments come from the parser."""
    by_name = {c.name: c for c in commands(build_parser().subcommands)}
    assert {"switch", "restart", "completion", "graph"} <= set(by_name)
    assert "--list-generations" in by_name["switch"].options
    assert by_name["switch"].positional == FILE
    assert by_name["restart"].positional == NAMES and by_name["logs"].positional == NAMES
    assert by_name["completion"].positional == " ".join(SHELLS)
    assert by_name["graph"].values["--format"] == "dot mermaid svg png"
    assert by_name["switch"].values["--state-dir"] == FILE
    assert "sysvinit" in by_name["switch"].values["-P"].split()


def test_names_of_the_current_generation(tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    state = tmp_path / "state"
    rc, out, _ = run(capsys, "completion", "--names", "--state-dir", str(state))
    assert rc == 0 and out == ""
    recorded(state, "/srv/a.py", "db", "web")
    rc, out, _ = run(capsys, "completion", "--names", "--state-dir", str(state))
    assert out.split() == ["db", "web"]


def test_a_shell_is_needed(capsys: pytest.CaptureFixture[str]) -> None:
    rc, _, err = run(capsys, "completion")
    assert rc == 2 and "bash|zsh|fish" in err
    rc, _, err = run(capsys, "completion", "tcsh")
    assert rc == 2 and "invalid choice" in err


def commands_starting(prefix: str) -> list[str]:
    """The subcommands whose name starts with ``prefix``, sorted (restart, repair, ...)."""
    found = sorted(c for c in build_parser().subcommands if c.startswith(prefix))
    assert {"repair", "restart"} <= set(found)
    return found


def bash_complete(path: Path, *words: str) -> list[str]:
    """What bash offers for the command line ``words`` (the last one is completed)."""
    words_list = " ".join(f"'{w}'" for w in words)
    code = (f"source {path}; COMP_WORDS=({words_list}); COMP_CWORD={len(words) - 1}; "
            '_procmgmt; printf "%s\\n" "${COMPREPLY[@]}"')
    proc = subprocess.run(["bash", "-c", code], capture_output=True, text=True, env=env(),
                          timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    return sorted(proc.stdout.split())


def test_bash_completes_commands_options_values_and_names(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = script("bash", capsys, tmp_path)
    assert subprocess.run(["bash", "-n", str(path)], check=False).returncode == 0
    assert bash_complete(path, "procmgmt", "re") == commands_starting("re")
    assert bash_complete(path, "procmgmt", "switch", "--list-g") == ["--list-generations"]
    assert bash_complete(path, "procmgmt", "graph", "--format", "m") == ["mermaid"]
    assert bash_complete(path, "procmgmt", "completion", "") == ["bash", "fish", "zsh"]
    state = tmp_path / "state"
    recorded(state, "/srv/a.py", "web", "webapp1", "db")
    assert bash_complete(path, "procmgmt", "restart", "--state-dir", str(state), "we") == [
        "web", "webapp1"]
    # bash splits '--state-dir=DIR' into three words (COMP_WORDBREAKS has '=').
    assert bash_complete(path, "procmgmt", "logs", "-f", "--state-dir", "=", str(state),
                         "") == ["db", "web", "webapp1"]
    assert bash_complete(path, "procmgmt", "graph", "--format", "=", "d") == ["dot"]
    assert bash_complete(path, "procmgmt", "graph", "--format", "=") == [
        "dot", "mermaid", "png", "svg"]
    # Another state dir: none of these names.
    assert bash_complete(path, "procmgmt", "stop", "--state-dir", str(tmp_path / "x"), "") == []
    model = tmp_path / "mymodel.py"
    model.write_text("")
    assert bash_complete(path, "procmgmt", "switch", str(tmp_path / "mym")) == [str(model)]


@pytest.mark.requires_tool("zsh")
def test_zsh_script_loads_and_registers(tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    path = script("zsh", capsys, tmp_path)
    assert subprocess.run(["zsh", "-n", str(path)], check=False).returncode == 0
    code = (f"autoload -U compinit && compinit -u -d {tmp_path}/zcompdump && source {path} && "
            'print -r -- "$_comps[procmgmt] ${_procmgmt_positionals[stop]} '
            '${_procmgmt_values[graph --format]}"')
    proc = subprocess.run(["zsh", "-f", "-c", code], capture_output=True, text=True,
                          env=env(), timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "_procmgmt @names dot mermaid svg png"


@pytest.mark.requires_tool("fish")
def test_fish_completes_commands_options_and_names(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    path = script("fish", capsys, tmp_path)
    assert subprocess.run(["fish", "-n", str(path)], check=False).returncode == 0
    state = tmp_path / "state"
    recorded(state, "/srv/a.py", "web", "webapp1", "db")

    def complete(line: str) -> list[str]:
        proc = subprocess.run(
            ["fish", "--no-config", "-c", f"source {path}; complete -C '{line}'"],
            capture_output=True, text=True, env={**env(), "HOME": str(tmp_path)}, timeout=60,
            check=False)
        assert proc.returncode == 0, proc.stderr
        return sorted(line.split("\t")[0] for line in proc.stdout.splitlines())

    assert complete("procmgmt re") == commands_starting("re")
    assert complete("procmgmt switch --list-g") == ["--list-generations"]
    assert complete(f"procmgmt restart --state-dir {state} we") == ["web", "webapp1"]

    def described(line: str) -> dict[str, str]:
        proc = subprocess.run(
            ["fish", "--no-config", "-c", f"source {path}; complete -C '{line}'"],
            capture_output=True, text=True, env={**env(), "HOME": str(tmp_path)}, timeout=60,
            check=False)
        return dict(line.split("\t", 1) for line in proc.stdout.splitlines() if "\t" in line)

    # Commands and options come with one line of their help.
    assert described("procmgmt resta")["restart"].startswith("stop and start processes")
    assert described("procmgmt logs --sin")["--since"] == "only lines written since T"
