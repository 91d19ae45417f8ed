"""The systemd backend: generated units, their quoting, systemd-analyze, and the activator.

A small re-implementation of systemd's unit-file parsing (line parser,
specifier expansion, word splitting with quotes and C escapes, ``$$`` in
Exec lines) lets Hypothesis check that any argument or environment value
survives the round trip. The e2e test (tests/e2e/test_systemd_e2e.py)
checks the same against a real systemd. The activator's link handling is
tested here with a fake ``systemctl`` that records its calls.
"""

from __future__ import annotations

import dataclasses
import os
import re
import subprocess
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from procmgmt.backends import get_backend
from procmgmt.backends.base import BuildContext, File
from procmgmt.backends.systemd import SystemdActivator, SystemdBackend
from procmgmt.backends.systemd.unit import environment_assignment, exec_line, render_unit
from procmgmt.deploy import store
from procmgmt.deploy.build import build, evaluate, render
from procmgmt.errors import DeployError, UsageError, ValidationError
from procmgmt.manifest import Generation
from procmgmt.model.spec import ProcessSpec
from procmgmt.settings import Settings
from tests import _lanes
from tests.conftest import EXAMPLES, golden_settings
from tests.golden.test_golden import CASES

WEBAPPS = EXAMPLES / "webapps"
SIMPLE = WEBAPPS / "processes.py"
ADVANCED = WEBAPPS / "processes-advanced.py"


@pytest.fixture(autouse=True)
def _systemd_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test starts from the defaults, whatever the developer's environment says."""
    for var in ("PROCMGMT_SYSTEMD_PREFIX", "PROCMGMT_SYSTEMD_USER",
                "PROCMGMT_SYSTEMD_TARGET_DIR"):
        monkeypatch.delenv(var, raising=False)


# --------------------------------------------------------------------------- systemd's syntax

_SIMPLE_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t",
                   "v": "\v", "\\": "\\", '"': '"', "'": "'", "s": " "}


def resolve_specifiers(text: str, known: dict[str, str]) -> str:
    """systemd's specifier expansion: ``%%`` is ``%``; an unknown one is an error."""
    out, i = [], 0
    while i < len(text):
        if text[i] != "%":
            out.append(text[i])
            i += 1
            continue
        if i + 1 >= len(text):
            raise ValueError("a lone % at the end")
        spec = text[i + 1]
        if spec == "%":
            out.append("%")
        elif spec in known:
            out.append(known[spec])
        else:
            raise ValueError(f"unknown specifier %{spec}")
        i += 2
    return "".join(out)


def _cunescape(text: str, i: int) -> tuple[str, int]:
    """One C escape starting after the backslash at ``i``; (char, next index)."""
    c = text[i]
    if c in _SIMPLE_ESCAPES:
        return _SIMPLE_ESCAPES[c], i + 1
    for prefix, digits, base in (("x", 2, 16), ("u", 4, 16), ("U", 8, 16)):
        if c == prefix:
            return chr(int(text[i + 1:i + 1 + digits], base)), i + 1 + digits
    if c in "01234567":
        return chr(int(text[i:i + 3], 8)), i + 3
    raise ValueError(f"unknown escape \\{c}")


def split_words(text: str) -> list[tuple[str, bool]]:
    """systemd's extract_first_word(EXTRACT_UNQUOTE|EXTRACT_CUNESCAPE), repeatedly:
    (word, whether any part of it was quoted)."""
    words: list[tuple[str, bool]] = []
    i, n = 0, len(text)
    while True:
        while i < n and text[i] in " \t\n\r":
            i += 1
        if i >= n:
            return words
        word: list[str] = []
        quoted, quote = False, ""
        while i < n:
            c = text[i]
            if quote:
                if c == quote:
                    quote = ""
                    i += 1
                elif c == "\\":
                    ch, i = _cunescape(text, i + 1)
                    word.append(ch)
                else:
                    word.append(c)
                    i += 1
            elif c in " \t\n\r":
                break
            elif c in "\"'":
                quote, quoted = c, True
                i += 1
            elif c == "\\":
                ch, i = _cunescape(text, i + 1)
                word.append(ch)
            else:
                word.append(c)
                i += 1
        if quote:
            raise ValueError("unterminated quote")
        words.append(("".join(word), quoted))


def expand_dollars(word: str) -> str:
    """Exec-line ``$`` handling: ``$$`` is ``$``; a variable reference is an error here."""
    out, i = [], 0
    while i < len(word):
        if word[i] == "$" and word[i + 1:i + 2] == "$":
            out.append("$")
            i += 2
        elif word[i] == "$" and re.match(r"[A-Za-z_{]", word[i + 1:i + 2]):
            raise ValueError(f"unintended variable expansion in {word!r}")
        else:
            out.append(word[i])
            i += 1
    return "".join(out)


def parse_exec(value: str, known: dict[str, str] | None = None) -> tuple[str, list[str]]:
    """(prefix flags, argv) of an Exec*= value, as systemd hands it to execve."""
    words = split_words(resolve_specifiers(value, known or {}))
    if not words:
        raise ValueError("empty command")
    for word, quoted in words:
        if word == ";" and not quoted:
            raise ValueError("a lone ; separates commands")
    first = words[0][0]
    prefix = re.match(r"[-@:+!]*", first)
    flags = prefix.group(0) if prefix else ""
    argv = [first[len(flags):], *(w for w, _ in words[1:])]
    return flags, [expand_dollars(a) for a in argv]


def parse_environment(value: str) -> dict[str, str]:
    """Variables of one Environment= value (words unquoted first, then specifiers)."""
    env = {}
    for word, _ in split_words(value):
        resolved = resolve_specifiers(word, {})
        name, sep, val = resolved.partition("=")
        if not sep or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            raise ValueError(f"invalid assignment {resolved!r}")
        env[name] = val
    return env


def parse_unit(text: str) -> dict[str, list[tuple[str, str]]]:
    """Section -> (key, raw value) pairs, as systemd's line parser reads a unit file."""
    sections: dict[str, list[tuple[str, str]]] = {}
    current = None
    for raw in text.split("\n"):
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.endswith("\\"):
            raise ValueError(f"line continues: {raw!r}")
        if line.startswith("["):
            current = line[1:-1]
            sections.setdefault(current, [])
            continue
        key, sep, value = line.partition("=")
        if not sep or current is None:
            raise ValueError(f"not a key=value line: {raw!r}")
        sections[current].append((key.strip(), value.strip()))
    return sections


def values(unit: dict[str, list[tuple[str, str]]], section: str, key: str) -> list[str]:
    """Every value of ``key`` in ``section``, in order."""
    return [v for k, v in unit.get(section, []) if k == key]


# --------------------------------------------------------------------------- helpers

def _spec(**kwargs: Any) -> ProcessSpec:
    base: dict[str, Any] = {"name": "svc", "description": "A service",
                            "foreground": "/bin/sleep", "foreground_args": ("1000",)}
    base.update(kwargs)
    return ProcessSpec(**base)


def _ctx(spec: ProcessSpec, privileged: bool = True) -> BuildContext:
    return BuildContext(settings=golden_settings(privileged, "systemd"), specs={spec.name: spec})


def _unit_of(spec: ProcessSpec, privileged: bool = True) -> tuple[dict[str, Any], list[File]]:
    backend = SystemdBackend()
    files, extra = backend.render_process(spec, _ctx(spec, privileged))
    return extra, files


def _unit_text(files: list[File]) -> str:
    unit = [f for f in files if f.path.endswith(".service")]
    assert len(unit) == 1, [f.path for f in files]
    return unit[0].content or ""


def _render(model: Path, privileged: bool = False,
            extra: dict[str, Any] | None = None) -> dict[str, dict[str, list[tuple[str, str]]]]:
    """process name -> parsed unit, for a model with golden settings."""
    settings = dataclasses.replace(golden_settings(privileged, "systemd"),
                                   extra_params=extra or {})
    model_obj, specs = evaluate(str(model), settings)
    result = render(model_obj, specs, settings, get_backend("systemd"))
    return {r.spec.name: parse_unit(_unit_text(r.files)) for r in result.processes}


# --------------------------------------------------------------------------- generator

def test_wants_and_after_advanced() -> None:
    """Each unit of the advanced example wants and is ordered after exactly its dependencies."""
    units = _render(ADVANCED)
    expected = {"webapp1": [], "webapp2": ["webapp1"], "webapp3": ["webapp1"],
                "webapp4": ["webapp2", "webapp3"], "webapp5": [], "webapp6": ["webapp5"]}
    assert sorted(units) == sorted(expected)
    for name, deps in expected.items():
        want = [f"procmgmt-{d}.service" for d in deps]
        assert values(units[name], "Unit", "Wants") == want, name
        assert values(units[name], "Unit", "After") == want, name
        assert values(units[name], "Install", "WantedBy") == ["multi-user.target"]


@pytest.mark.parametrize(("mode", "unit_type"), [(None, "simple"), ("foreground", "simple"),
                                                 ("daemon", "forking")])
def test_type_per_mode(mode: str | None, unit_type: str) -> None:
    """Foreground when available (Type=simple, no PIDFile); a daemon only: Type=forking
    with the derived pid file and the daemon's -D argument."""
    units = _render(SIMPLE, extra={"webapp_mode": mode} if mode else {})
    unit = units["webapp"]
    assert values(unit, "Service", "Type") == [unit_type]
    _, argv = parse_exec(values(unit, "Service", "ExecStart")[0])
    if unit_type == "forking":
        assert values(unit, "Service", "PIDFile") == ["/srv/pm/run/procmgmt-pid/webapp/webapp.pid"]
        assert argv[-1] == "-D"
    else:
        assert values(unit, "Service", "PIDFile") == []
        assert argv[-1].endswith("webapp.py")
    assert values(unit, "Service", "KillMode") == ["control-group"]


def test_user_and_group_only_when_privileged() -> None:
    """User=/Group= come from the process and its credentials, and vanish without
    user changes (the process then runs as the deployer)."""
    privileged = _render(SIMPLE, privileged=True)["webapp1"]
    assert values(privileged, "Service", "User") == ["webapp1"]
    assert values(privileged, "Service", "Group") == ["webapp1"]
    unprivileged = _render(SIMPLE, privileged=False)["webapp1"]
    assert values(unprivileged, "Service", "User") == []
    assert values(unprivileged, "Service", "Group") == []


def test_prestart_script_and_plus_prefix() -> None:
    """initialize becomes bin/<name>-prestart (0755, set -e), run through %Y with
    the + prefix only when the process switches user."""
    spec = _spec(initialize="mkdir -p /srv/x\nchown svc /srv/x", user="svc")
    extra, files = _unit_of(spec)
    script = next(f for f in files if f.path == "bin/svc-prestart")
    assert script.mode == 0o755
    assert script.content is not None
    assert script.content.startswith("#!/bin/sh\n")
    assert "set -e\nmkdir -p /srv/x\nchown svc /srv/x\n" in script.content
    unit = parse_unit(_unit_text(files))
    pre = values(unit, "Service", "ExecStartPre")
    assert len(pre) == 1
    flags, argv = parse_exec(pre[0], {"Y": "/store/abc-svc/etc/systemd/system"})
    assert flags == "+"
    assert argv == ["/bin/sh", "/store/abc-svc/etc/systemd/system/../../../bin/svc-prestart"]
    assert extra["prestart"] == "bin/svc-prestart"
    # Without a user switch the prestart runs with the process's own (root) rights.
    _, files = _unit_of(_spec(initialize="true"))
    flags, _ = parse_exec(values(parse_unit(_unit_text(files)), "Service", "ExecStartPre")[0],
                          {"Y": "/d"})
    assert flags == ""
    # Unprivileged: the user is dropped, so no + either.
    _, files = _unit_of(spec, privileged=False)
    unit = parse_unit(_unit_text(files))
    assert values(unit, "Service", "User") == []
    assert parse_exec(values(unit, "Service", "ExecStartPre")[0], {"Y": "/d"})[0] == ""


def test_no_prestart_without_initialize() -> None:
    """No initialize, no script and no ExecStartPre=."""
    extra, files = _unit_of(_spec())
    assert [f.path for f in files] == ["etc/systemd/system/procmgmt-svc.service"]
    assert "ExecStartPre" not in _unit_text(files)
    assert extra == {"unit": "procmgmt-svc.service",
                     "unit_file": "etc/systemd/system/procmgmt-svc.service",
                     "prestart": None, "user_mode": False}


def test_every_option() -> None:
    """Description, WorkingDirectory, UMask, Nice, PATH (path + systemd's default) and
    environment all appear, with % escaped where systemd expands specifiers."""
    spec = _spec(description="50% of\n the  work", directory="/srv/100%", umask="0027",
                 nice=7, path=("/opt/tool",), environment={"A": "1"})
    unit = parse_unit(_unit_text(_unit_of(spec)[1]))
    assert resolve_specifiers(values(unit, "Unit", "Description")[0], {}) == "50% of the work"
    assert resolve_specifiers(values(unit, "Service", "WorkingDirectory")[0], {}) == "/srv/100%"
    assert values(unit, "Service", "UMask") == ["0027"]
    assert values(unit, "Service", "Nice") == ["7"]
    env: dict[str, str] = {}
    for v in values(unit, "Service", "Environment"):
        env.update(parse_environment(v))
    assert env == {"A": "1", "PATH": "/opt/tool:/usr/local/sbin:/usr/local/bin:/usr/sbin:"
                                     "/usr/bin:/sbin:/bin"}


def test_prefix_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """PROCMGMT_SYSTEMD_PREFIX renames units and the dependency references."""
    monkeypatch.setenv("PROCMGMT_SYSTEMD_PREFIX", "acme-")
    settings = golden_settings(False, "systemd")
    model, specs = evaluate(str(ADVANCED), settings)
    result = render(model, specs, settings, get_backend("systemd"))
    by_name = {r.spec.name: r for r in result.processes}
    assert [f.path for f in by_name["webapp2"].files
            if f.path.startswith("etc/")] == ["etc/systemd/system/acme-webapp2.service"]
    assert by_name["webapp2"].extra["unit"] == "acme-webapp2.service"
    unit = parse_unit(_unit_text(by_name["webapp2"].files))
    assert values(unit, "Unit", "Wants") == ["acme-webapp1.service"]
    monkeypatch.setenv("PROCMGMT_SYSTEMD_PREFIX", "bad prefix/")
    with pytest.raises(UsageError, match="PROCMGMT_SYSTEMD_PREFIX"):
        render(model, specs, settings, get_backend("systemd"))


def test_user_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    """PROCMGMT_SYSTEMD_USER=1: wanted by default.target, no User= (with a warning)."""
    monkeypatch.setenv("PROCMGMT_SYSTEMD_USER", "1")
    spec = _spec(user="svc", initialize="true")
    ctx = _ctx(spec)
    files, extra = SystemdBackend().render_process(spec, ctx)
    unit = parse_unit(_unit_text(files))
    assert values(unit, "Install", "WantedBy") == ["default.target"]
    assert values(unit, "Service", "User") == []
    assert parse_exec(values(unit, "Service", "ExecStartPre")[0], {"Y": "/d"})[0] == ""
    assert extra["user_mode"] is True
    assert any("svc" in w and "user manager" in w for w in ctx.warnings)


def test_override_dict_merges_and_repeats_lists() -> None:
    """A dict override adds keys, replaces values, deletes with None, and list values
    render as repeated keys; Environment entries merge one by one."""
    override = {"Service": {"Restart": "always", "RestartSec": 2, "KillMode": None,
                            "ExecStartPost": ["/bin/true one", "/bin/true two"],
                            "Environment": {"EXTRA": "x y", "A": None},
                            "NoNewPrivileges": True},
                "Unit": {"Documentation": "https://example.org/"},
                "X-Custom": {"Note": "kept"}}
    spec = _spec(environment={"A": "1", "B": "2"}, overrides={"systemd": override})
    text = _unit_text(_unit_of(spec)[1])
    unit = parse_unit(text)
    assert values(unit, "Service", "Restart") == ["always"]
    assert values(unit, "Service", "RestartSec") == ["2"]
    assert values(unit, "Service", "KillMode") == []
    assert values(unit, "Service", "ExecStartPost") == ["/bin/true one", "/bin/true two"]
    assert values(unit, "Service", "NoNewPrivileges") == ["yes"]
    assert values(unit, "Unit", "Documentation") == ["https://example.org/"]
    assert values(unit, "X-Custom", "Note") == ["kept"]
    env: dict[str, str] = {}
    for v in values(unit, "Service", "Environment"):
        env.update(parse_environment(v))
    assert env == {"B": "2", "EXTRA": "x y"}
    assert text.index("[Unit]") < text.index("[Service]") < text.index("[Install]") \
        < text.index("[X-Custom]")


def test_override_callable() -> None:
    """A callable override gets the whole model and may rewrite anything."""
    def patch(native: dict[str, Any]) -> dict[str, Any]:
        native["Service"]["ExecStart"] = exec_line(["/bin/echo", "a b"])
        del native["Install"]
        return native

    unit = parse_unit(_unit_text(_unit_of(_spec(overrides={"systemd": patch}))[1]))
    assert parse_exec(values(unit, "Service", "ExecStart")[0]) == ("", ["/bin/echo", "a b"])
    assert "Install" not in unit


@pytest.mark.parametrize("bad", [{"Service": {"ExecStart": "/bin/x\n/bin/y"}},
                                 {"Service": {"Bad Key": "1"}},
                                 {"Service": {"Description": "ends with \\"}},
                                 {"Service": {"Other": {"a": "b"}}},
                                 {"Service": "not a dict"}])
def test_bad_override_is_a_value_error(bad: dict[str, Any]) -> None:
    """An override that would produce a broken unit file fails rendering with a message."""
    with pytest.raises(ValueError):
        _unit_of(_spec(overrides={"systemd": bad}))


def test_newline_in_environment_rejected(tmp_path: Path) -> None:
    """A newline (or another control character but TAB) in an environment value is a
    validation problem naming the process and variable; TAB is fine."""
    specs = [_spec(environment={"GOOD": "a\tb", "BAD": "one\ntwo"}),
             _spec(name="other", environment={"ESC": "\x1b[0m"})]
    problems = SystemdBackend().validate(specs, _ctx(specs[0]))
    assert [(p.instance, p.field) for p in problems] == [("svc", "environment.BAD"),
                                                ("other", "environment.ESC")]
    assert "newline" in problems[0].message
    model = tmp_path / "model.py"
    model.write_text(textwrap.dedent("""
        from procmgmt import Instance, Process
        def processes(settings):
            return {"svc": Instance(Process(name="svc", process="/bin/sleep", args=["9"],
                                            environment={"MULTI": "line1\\nline2"}))}
    """))
    settings = golden_settings(False, "systemd")
    m, specs2 = evaluate(str(model), settings)
    with pytest.raises(ValidationError, match=r"svc\.environment\.MULTI: systemd: .*newline"):
        render(m, specs2, settings, get_backend("systemd"))


def test_validate_paths() -> None:
    """Relative working directories, pid files and executables with a slash are refused."""
    spec = _spec(directory="rel/dir", pid_file="x.pid", foreground="bin/x")
    fields = [p.field for p in SystemdBackend().validate([spec], _ctx(spec))]
    assert fields == ["directory", "pid_file", "process"]


# --------------------------------------------------------------------------- quoting properties

_TEXT = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"),
                max_size=20)
_ENV_VALUE = st.text(st.characters(exclude_categories=["Cs", "Cc"], include_characters="\t"),
                     max_size=20)
_ENV_NAME = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,8}", fullmatch=True)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(argv=st.lists(_TEXT, max_size=6))
@example(argv=["0\n"])  # a "$" regex anchor once let a trailing newline pass unquoted
def test_exec_line_round_trip(argv: list[str]) -> None:
    """Any argument list (no NUL) comes back unchanged through systemd's Exec parsing."""
    line = exec_line(["/usr/bin/prog", *argv])
    assert "\n" not in line
    assert parse_exec(line) == ("", ["/usr/bin/prog", *argv])


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(name=_ENV_NAME, value=_ENV_VALUE)
def test_environment_assignment_round_trip(name: str, value: str) -> None:
    """Any value without control characters (TAB allowed) survives Environment= parsing."""
    text = environment_assignment(name, value)
    assert "\n" not in text
    assert parse_environment(text) == {name: value}


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(args=st.lists(_TEXT, max_size=4),
       env=st.dictionaries(_ENV_NAME, _ENV_VALUE, max_size=4),
       description=_TEXT)
def test_whole_unit_round_trip(args: list[str], env: dict[str, str], description: str) -> None:
    """Through the whole unit file (line parser included): ExecStart and Environment
    come back exactly; the description only loses whitespace structure (and a trailing
    backslash, which would continue the line)."""
    spec = _spec(foreground_args=tuple(args), environment=env, description=description)
    unit = parse_unit(_unit_text(_unit_of(spec)[1]))
    assert parse_exec(values(unit, "Service", "ExecStart")[0]) == ("", ["/bin/sleep", *args])
    got: dict[str, str] = {}
    for v in values(unit, "Service", "Environment"):
        got.update(parse_environment(v))
    assert got == env
    desc = values(unit, "Unit", "Description")
    assert [resolve_specifiers(d, {}) for d in desc] == [
        " ".join(description.split()).rstrip(" \\")]


def test_quoting_examples() -> None:
    """Readable output for common values: plain words stay bare, the rest is quoted."""
    assert exec_line(["/bin/x", "-p", "8080", "a b", "$HOME", "50%", ";", ""]) == \
        '/bin/x -p 8080 "a b" "$$HOME" "50%%" ";" ""'
    assert environment_assignment("PORT", "5000") == "PORT=5000"
    assert environment_assignment("MSG", 'say "hi" \\ 5%') == '"MSG=say \\"hi\\" \\\\ 5%%"'


# --------------------------------------------------------------------------- systemd-analyze

def _verify(paths: list[Path]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([_lanes.require_tool("systemd-analyze"), "verify", "--man=no",
                           "--recursive-errors=no", *map(str, paths)],
                          capture_output=True, text=True, timeout=60, check=False)


@pytest.mark.requires_tool("systemd-analyze")
@pytest.mark.parametrize("case", sorted(CASES))
def test_golden_cases_pass_systemd_analyze_verify(case: str, tmp_path: Path) -> None:
    """Every unit of every example case (with this machine's real interpreter and
    paths) verifies without a single warning on stderr."""
    model_path, privileged, extra = CASES[case]
    settings = dataclasses.replace(golden_settings(privileged, "systemd"), extra_params=extra)
    model, specs = evaluate(str(model_path), settings)
    result = render(model, specs, settings, get_backend("systemd"))
    units = []
    for r in result.processes:
        root = tmp_path / r.spec.name
        root.mkdir()
        store.write_files(str(root), r.files)
        units.append(root / r.extra["unit_file"])
    assert units
    proc = _verify(units)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""


@pytest.mark.requires_tool("systemd-analyze")
def test_unit_with_every_option_passes_verify(tmp_path: Path) -> None:
    """A unit using initialize, user, directory, umask, nice, path, nasty environment and
    arguments verifies cleanly; a deliberately bad key shows the check can fail."""
    spec = _spec(initialize="echo init", user="daemon", directory="/", umask="0022", nice=5,
                 path=("/usr",), foreground="/bin/sh",
                 foreground_args=("-c", 'echo "$1" 100%', "--", "a b;$c"),
                 environment={"A": "x y \"q\" 100% $HOME ü", "B": ""})
    _, files = _unit_of(spec)
    store.write_files(str(tmp_path), files)
    unit = tmp_path / "etc/systemd/system/procmgmt-svc.service"
    proc = _verify([unit])
    assert (proc.returncode, proc.stderr) == (0, "")
    bad = tmp_path / "procmgmt-bad.service"
    bad.write_text(render_unit({"Service": {"ExecStart": "/bin/true", "Bogus": "1"}}))
    proc = _verify([bad])
    assert "Unknown key" in proc.stderr


# --------------------------------------------------------------------------- activator

FAKE_SYSTEMCTL = """#!/bin/sh
# Records every call; answers show from $FAKE_STATE/<unit>.state (default inactive).
echo "$*" >> "$FAKE_LOG"
for last; do :; done
case " $* " in
    *" show "*)
        state=inactive
        [ -f "$FAKE_STATE/$last.state" ] && state=$(cat "$FAKE_STATE/$last.state")
        echo "ActiveState=$state"; echo "SubState=dead"; echo "MainPID=0"
        echo "LoadState=loaded"; echo "Result=success" ;;
    *" start "*)
        [ -f "$FAKE_STATE/$last.fail" ] && { echo "Job failed" >&2; exit 1; }
        echo active > "$FAKE_STATE/$last.state" ;;
    *" stop "*) echo inactive > "$FAKE_STATE/$last.state" ;;
    *" status "*) echo "$last - status output line" ;;
esac
exit 0
"""


@dataclasses.dataclass
class FakeSystemd:
    """A fake systemctl on PATH plus a state dir, target dir and helpers to build gens."""

    root: Path
    settings: Settings

    @property
    def target(self) -> Path:
        return self.root / "target"

    def calls(self) -> list[str]:
        log = self.root / "log"
        return log.read_text().splitlines() if log.exists() else []

    def links(self) -> dict[str, str]:
        return {p.name: os.readlink(p) for p in sorted(self.target.iterdir()) if p.is_symlink()}

    def build(self, model: Path | None) -> Generation:
        from procmgmt.model.loader import empty_model
        if model is None:
            return build(empty_model(), [], self.settings)
        m, specs = evaluate(str(model), self.settings)
        return build(m, specs, self.settings)


@pytest.fixture
def fake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeSystemd]:
    """A fake systemd environment; system mode with the target dir in tmp_path."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "systemctl").write_text(FAKE_SYSTEMCTL)
    (bindir / "systemctl").chmod(0o755)
    (tmp_path / "state").mkdir()
    monkeypatch.setenv("PATH", f"{bindir}:{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_LOG", str(tmp_path / "log"))
    monkeypatch.setenv("FAKE_STATE", str(tmp_path / "state"))
    monkeypatch.setenv("PROCMGMT_SYSTEMD_TARGET_DIR", str(tmp_path / "target"))
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    state = tmp_path / "pm"
    settings = dataclasses.replace(
        golden_settings(False, "systemd"), state_dir=str(state), runtime_dir=str(state / "run"),
        log_dir=str(state / "log"), tmp_dir=str(state / "tmp"), lib_dir=str(state / "lib"),
        extra_params={"port_base": 45000})
    yield FakeSystemd(tmp_path, settings)


def test_activator_links_and_reload(fake: FakeSystemd) -> None:
    """prepare links every unit to its store file and reloads; start/status/stop call
    systemctl per unit; stopping an obsolete unit removes its link, finish reloads."""
    gen1 = fake.build(SIMPLE)
    act = SystemdActivator(fake.settings)
    act.prepare(gen1, None)
    links = fake.links()
    assert sorted(links) == ["procmgmt-webapp.service", "procmgmt-webapp1.service"]
    for p in gen1.processes:
        assert links[f"procmgmt-{p.name}.service"] == os.path.join(
            p.path, "etc/systemd/system", f"procmgmt-{p.name}.service")
    assert fake.calls()[-1].endswith("daemon-reload")
    for p in gen1.processes:
        act.start(gen1, p)
        assert act.status(gen1, p).running
    act.finish(gen1, None)
    # Switch to the advanced model: webapp is obsolete, webapp1 identical.
    gen2 = fake.build(ADVANCED)
    act2 = SystemdActivator(fake.settings)
    act2.prepare(gen2, gen1)
    assert "procmgmt-webapp.service" in fake.links()  # still needed for the stop
    old_webapp = gen1.by_name()["webapp"]
    act2.stop(gen1, old_webapp)
    assert "procmgmt-webapp.service" not in fake.links()
    assert not act2.status(gen1, old_webapp).running
    act2.finish(gen2, gen1)
    assert sorted(fake.links()) == [f"procmgmt-webapp{i}.service" for i in range(1, 7)]
    assert fake.calls()[-2].endswith("daemon-reload")
    # The removed unit's failed state (if any) is forgotten: no "not-found failed" left.
    assert fake.calls()[-1].endswith("reset-failed procmgmt-webapp.service")
    assert "--no-ask-password stop procmgmt-webapp.service" in fake.calls()


def test_changed_unit_keeps_new_link_after_stop(fake: FakeSystemd) -> None:
    """A changed process has the same unit name: prepare points the link at the new file
    and stopping the old version must not remove it."""
    gen1 = fake.build(SIMPLE)
    act = SystemdActivator(fake.settings)
    act.prepare(gen1, None)
    fake.settings = dataclasses.replace(fake.settings, extra_params={"port_base": 46000})
    gen2 = fake.build(SIMPLE)
    act2 = SystemdActivator(fake.settings)
    act2.prepare(gen2, gen1)
    act2.stop(gen1, gen1.by_name()["webapp"])
    new = gen2.by_name()["webapp"]
    assert fake.links()["procmgmt-webapp.service"] == os.path.join(
        new.path, "etc/systemd/system/procmgmt-webapp.service")
    act2.finish(gen2, gen1)
    assert sorted(fake.links()) == ["procmgmt-webapp.service", "procmgmt-webapp1.service"]


def test_undeploy_removes_everything(fake: FakeSystemd) -> None:
    """Switching to the empty generation stops and unlinks every unit."""
    gen1 = fake.build(SIMPLE)
    act = SystemdActivator(fake.settings)
    act.prepare(gen1, None)
    empty = fake.build(None)
    act2 = SystemdActivator(fake.settings)
    act2.prepare(empty, gen1)
    for p in reversed(gen1.processes):
        act2.stop(gen1, p)
    act2.finish(empty, gen1)
    assert fake.links() == {}


def test_failed_undo_leaves_no_links(fake: FakeSystemd) -> None:
    """After a failed first deployment, finish with nothing removes the links it made."""
    gen1 = fake.build(SIMPLE)
    act = SystemdActivator(fake.settings)
    act.prepare(gen1, None)
    act.finish(Generation("systemd", "", ()), None)
    assert fake.links() == {}


def test_start_failure_raises_with_status(fake: FakeSystemd) -> None:
    """A unit that does not start raises DeployError quoting systemctl status."""
    gen1 = fake.build(SIMPLE)
    act = SystemdActivator(fake.settings)
    act.prepare(gen1, None)
    (fake.root / "state" / "procmgmt-webapp.service.fail").write_text("")
    with pytest.raises(DeployError, match=r"(?s)could not start procmgmt-webapp\.service: "
                                          r"Job failed.*status output line"):
        act.start(gen1, gen1.by_name()["webapp"])


def test_foreign_unit_is_not_replaced(fake: FakeSystemd) -> None:
    """A unit file procmgmt did not install is never overwritten."""
    fake.target.mkdir()
    (fake.target / "procmgmt-webapp.service").write_text("[Service]\nExecStart=/bin/true\n")
    with pytest.raises(DeployError, match="not installed by procmgmt"):
        SystemdActivator(fake.settings).prepare(fake.build(SIMPLE), None)


def test_system_mode_needs_root(fake: FakeSystemd, monkeypatch: pytest.MonkeyPatch) -> None:
    """Non-root without PROCMGMT_SYSTEMD_USER=1 gets a clear error, not a polkit prompt;
    in user mode the target dir defaults to ~/.config/systemd/user and systemctl gets --user."""
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with pytest.raises(UsageError, match="PROCMGMT_SYSTEMD_USER=1"):
        SystemdActivator(fake.settings).prepare(fake.build(SIMPLE), None)
    monkeypatch.setenv("PROCMGMT_SYSTEMD_USER", "1")
    monkeypatch.delenv("PROCMGMT_SYSTEMD_TARGET_DIR")
    monkeypatch.setenv("HOME", str(fake.root / "home"))
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    act = SystemdActivator(fake.settings)
    assert act.target_dir == str(fake.root / "home/.config/systemd/user")
    act.prepare(fake.build(SIMPLE), None)
    assert fake.calls()[-1] == "--user --no-ask-password daemon-reload"


def test_a_declared_reload_signal_is_exec_reload() -> None:
    """reload_signal becomes ExecReload= (what 'systemctl reload' runs); none, no line."""
    _, files = _unit_of(_spec(reload_signal="USR1"))
    assert "ExecReload=/bin/kill -s USR1 $MAINPID" in _unit_text(files).splitlines()
    _, files = _unit_of(_spec())
    assert "ExecReload" not in _unit_text(files)
