"""Every backend, every awkward value: the generated file gives back exactly the input,
or validation refuses it naming the field.

Each generated file is read back with the rules of the program that will
read it, not with procmgmt's own encoder:

* sysvinit: ``sh`` evaluates the script's environment/pid-file block, its
  ``cd`` word and its ``set --`` command line and prints the results with
  ``printf '%s\\0'``;
* bsdrc: ``sh`` sources the environment file with ``set -a`` (as rc.subr does)
  and evaluates the ``procmgmt_command_args`` call of ``start_precmd``;
* systemd: the unit-file, specifier and command-line rules of systemd.syntax(7)
  and systemd.service(5), as implemented in ``tests/backends/test_systemd.py``;
* supervisord: supervisor's own config parser (``ServerOptions``) plus
  ``shlex.split`` for ``command`` (as supervisord does), and ``sh`` for the
  foreground proxy of daemon-only processes;
* launchd (when registered): ``plistlib``;
* runit: ``sh`` evaluates the ``run`` script's exports and ``chpst`` line and
  the ``proxy`` it executes;
* s6: ``run`` must exec ``./data/start`` (directly or through
  ``s6-notifyoncheck``), whose environment block and command ``sh`` evaluates;
* process-compose, kubernetes: PyYAML, after the reader's own ``$`` (and, for
  process-compose, Go template) rules; an inlined proxy is read with sh;
* docker: the ``docker create`` plan's ``--env`` and ``--workdir`` values and its
  exec-form command, and ``sh`` for the proxy of daemon-only processes;
* s6-rc: the longrun's definition directory (``type`` is ``longrun``) holds the
  same ``run`` and ``data/start`` (s6-rc-compile copies ``data/`` verbatim), read
  as for s6.

Runs without starting any process manager; ``test_run_roundtrip.py`` starts
the runnable backends for real.
"""

from __future__ import annotations

import json
import os
import plistlib
import re
import shlex
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from supervisor.options import ServerOptions

from procmgmt.backends import backend_names
from procmgmt.backends.base import File
from procmgmt.deploy.build import render
from procmgmt.errors import ValidationError
from procmgmt.settings import Settings
from procmgmt.validate import validate
from tests.backends.test_systemd import (
    parse_environment,
    parse_exec,
    parse_unit,
    resolve_specifiers,
    values,
)
from tests.conftest import golden_settings
from tests.injection import (
    AWKWARD,
    COMPONENT,
    ENV_NAME,
    INVALID_NAMES,
    NAME,
    Case,
    model_of,
    refusal_is_clear,
)

BACKENDS = backend_names()
STATE = "/srv/pm"


@dataclass
class Parsed:
    """What the process would get, read back from the generated files."""

    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    directory: str | None = None
    pid_file: str | None = None


def sh_words(script: str) -> list[str]:
    """Run ``script`` with /bin/sh; its stdout split at NUL bytes."""
    r = subprocess.run(["sh", "-c", script], capture_output=True, check=False, timeout=30,
                       env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C.UTF-8"})
    assert r.returncode == 0, r.stderr.decode(errors="replace") + "\n--- script:\n" + script
    return r.stdout.decode("utf-8", errors="surrogateescape").split("\0")[:-1]


def _printf_vars(names: Sequence[str]) -> str:
    return "\nprintf '%s\\0'" + "".join(f' "${{{n}-<unset>}}"' for n in names) + "\n"


def _file(files: Sequence[File], pattern: str) -> str:
    for f in files:
        if re.fullmatch(pattern, f.path) and f.content is not None:
            return f.content
    raise AssertionError(f"no file matching {pattern}: {[f.path for f in files]}")


def _line(text: str, prefix: str) -> str:
    """The (single) line of ``text`` starting with ``prefix``."""
    m = re.search("^" + re.escape(prefix) + ".*$", text, re.M)
    assert m, f"no line {prefix!r} in:\n{text}"
    return m.group(0)


def _between(text: str, start: str, end: str) -> str:
    m = re.search(start + r"(.*?)" + end, text, re.S)
    assert m, f"{start!r} ... {end!r} not found in:\n{text}"
    return m.group(1)


# --------------------------------------------------------------------------- readers


def read_sysvinit(files: Sequence[File], case: Case, tmp: Path) -> Parsed:
    """Evaluate the script's assignments and its command words with sh."""
    text = _file(files, r"etc/rc\.d/init\.d/.*")
    # Everything from the PATH line to the timeouts: exports and the pid file.
    head = text[text.index("\nPATH="):text.index("\nprocmgmt_stop_timeout=")]
    keys = sorted(case.environment)
    env_words = sh_words(head + _printf_vars([*keys, "procmgmt_pidfile"]))
    command = _between(text, r"\n    set -- ",
                       r"\n    (?:# Run as|set -- nice -n|echo \"Starting|# Check the pid)")
    argv = sh_words(f"set -- {command}\nprintf '%s\\0' \"$@\"\n")
    directory = None
    if case.directory is not None:
        word = _between(text, r"\n    cd ", r" \|\| return 1\n    set -- ")
        directory = sh_words(f"printf '%s\\0' {word}\n")[0]
    return Parsed(argv, dict(zip(keys, env_words[:-1], strict=True)), directory,
                  env_words[-1])


def read_bsdrc(files: Sequence[File], case: Case, tmp: Path) -> Parsed:
    """Source the environment file as rc.subr does; evaluate start_precmd's argv."""
    text = _file(files, r"etc/rc\.d/.*")
    keys = sorted(case.environment)
    env: dict[str, str] = {}
    if keys:
        env_text = _file(files, r"etc/env/.*\.env")
        env = dict(zip(keys, sh_words("set -a\n" + env_text + _printf_vars(keys)),
                       strict=True))
    call = _between(text, r"\n\tprocmgmt_command_args ", r"\n}\n\n# procmgmt_replace ")
    words = sh_words("procmgmt_command_args() { shift 3; for a; do printf '%s\\0' \"$a\"; done; }\n"
                     f"procmgmt_command_args {call}\n")
    if case.mode == "foreground":  # daemon -f -p PIDFILE -o LOGFILE program args
        assert words[:2] == ["-f", "-p"] and words[3] == "-o", words
        pid_file, argv = words[2], words[5:]
    else:
        pid_file = sh_words(_line(text, "pidfile=") + "\nprintf '%s\\0' \"$pidfile\"\n")[0]
        program = sh_words(_line(text, "command=") + "\nprintf '%s\\0' \"$command\"\n")[0]
        argv = [program, *words]
    directory = None
    if case.directory is not None:
        m = re.search(r'\n: "\$\{[A-Za-z0-9_]+_chdir:=(.*)\}"\n', text)
        assert m, text
        directory = m.group(1)
    return Parsed(argv, env, directory, pid_file)


def read_systemd(files: Sequence[File], case: Case, tmp: Path) -> Parsed:
    """systemd's own rules: unit lines, specifiers, quoting, C escapes, ``$$``."""
    unit = parse_unit(_file(files, r"etc/systemd/system/.*\.service"))
    (exec_start,) = values(unit, "Service", "ExecStart")
    flags, argv = parse_exec(exec_start)
    assert flags == ""
    env: dict[str, str] = {}
    for value in values(unit, "Service", "Environment"):
        env.update(parse_environment(value))
    directory = None
    if case.directory is not None:
        (wd,) = values(unit, "Service", "WorkingDirectory")
        directory = resolve_specifiers(wd, {})
    pid_file = None
    if case.mode == "daemon":
        (pf,) = values(unit, "Service", "PIDFile")
        pid_file = resolve_specifiers(pf, {})
    return Parsed(argv, env, directory, pid_file)


def read_supervisord(files: Sequence[File], case: Case, tmp: Path) -> Parsed:
    """supervisor's parser for the program section; sh for the proxy script."""
    root = tmp / "supervisord"
    (root / "conf.d").mkdir(parents=True, exist_ok=True)
    (root / "supervisord.conf").write_text(
        f"[supervisord]\n[include]\nfiles = {root}/conf.d/*.conf\n", encoding="utf-8")
    for sub in ("log", "tmp"):
        (root / "srv" / sub).mkdir(parents=True, exist_ok=True)
    # supervisor checks that the log file's directory exists: move only that one.
    conf = re.sub(f"^stdout_logfile={STATE}/", f"stdout_logfile={root}/srv/",
                  _file(files, r"conf\.d/.*\.conf"), flags=re.M)
    for old in (root / "conf.d").iterdir():
        old.unlink()
    (root / "conf.d" / f"{case.name}.conf").write_text(conf, encoding="utf-8")
    options = ServerOptions()
    options.configfile = str(root / "supervisord.conf")
    section = options.read_config(str(root / "supervisord.conf"))
    (program,) = [p for g in section.process_group_configs for p in g.process_configs]
    argv = shlex.split(program.command)
    env = dict(program.environment or {})
    directory, pid_file = program.directory, None
    if argv and argv[0].endswith(f"/bin/{case.name}-proxy"):
        argv, directory, pid_file = read_proxy(_file(files, r"bin/.*-proxy"), case)
    return Parsed(argv, env, directory, pid_file)


def read_proxy(proxy: str, case: Case) -> tuple[list[str], str | None, str | None]:
    """(argv, directory, pid file) of a foreground proxy script, evaluated with sh."""
    directory = pid_file = None
    if case.directory is not None:
        word = _between(proxy, r"\ncd ", r" \|\| exit 1\n")
        directory = sh_words(f"printf '%s\\0' {word}\n")[0]
    if case.mode == "daemon":
        command = _between(proxy, r"\n# Start the daemon; its start command returns once "
                           r"it has daemonized\.\n", r"\nprocmgmt_start_rc=\$\?")
        assignment = proxy[proxy.index("\nprocmgmt_pid_file="):
                           proxy.index("\nprocmgmt_pf_timeout=")]
        pid_file = sh_words(assignment + "\nprintf '%s\\0' \"$procmgmt_pid_file\"\n")[0]
    else:
        command = _between(proxy, r"\nexec ", r"\n$")
    return sh_words(f"set -- {command}\nprintf '%s\\0' \"$@\"\n"), directory, pid_file


def read_launchd(files: Sequence[File], case: Case, tmp: Path) -> Parsed:
    """launchd reads the plist (plistlib): ProgramArguments, EnvironmentVariables,
    WorkingDirectory; an embedded proxy (``/bin/sh -c SCRIPT NAME``) is read with sh."""
    text = _file(files, r".*\.plist")
    plist = plistlib.loads(text.encode("utf-8"))
    argv = list(plist["ProgramArguments"])
    directory, pid_file = plist.get("WorkingDirectory"), None
    if argv[:2] == ["/bin/sh", "-c"] and argv[3:] == [f"{case.name}-proxy"]:
        argv, directory, pid_file = read_proxy(argv[2], case)
    return Parsed(argv, dict(plist.get("EnvironmentVariables", {})), directory, pid_file)


def read_runit(files: Sequence[File], case: Case, tmp: Path) -> Parsed:
    """runsv executes ``run``: sh evaluates its exports and its last line, which
    executes ``chpst ... -- ./proxy`` (chpst(8): options up to ``--``), or reads
    the proxy in (``. ./proxy``), whose exec then runs ``chpst ... -- PROGRAM``;
    the proxy is read with sh."""
    run = _file(files, r"service/run")
    keys = sorted(case.environment)
    sourced = run.endswith("\n. ./proxy\n")
    end = run.rindex("\n# The proxy only prepares") if sourced else run.rindex("\nexec chpst ")
    body = run[run.index("\nexec 2>&1\n") + len("\nexec 2>&1\n"):end]
    env_words = sh_words(body + _printf_vars(keys)) if keys else []
    argv, directory, pid_file = read_proxy(_file(files, r"service/proxy"), case)
    if sourced:
        assert argv[:2] == ["chpst", "-P"] and "--" in argv, argv
        argv = argv[argv.index("--") + 1:]
    else:
        chpst = sh_words(f"set -- {_line(run, 'exec chpst ')[len('exec '):]}\n"
                         "printf '%s\\0' \"$@\"\n")
        assert chpst[-2:] == ["--", "./proxy"], chpst
    return Parsed(argv, dict(zip(keys, env_words, strict=True)), directory, pid_file)


def cygrunsrv_split(text: str) -> list[str]:
    """cygrunsrv's ``--args`` splitting as its documentation (and cygrunsrv.cc's
    eval_arglist) describes it, written independently of the backend: words are
    separated by spaces only; a word starting with ``"`` or ``'`` runs to the next
    same quote (or the end) and loses the quotes; no escapes."""
    words: list[str] = []
    i = 0
    while i < len(text):
        if text[i] == " ":
            i += 1
            continue
        if text[i] in "\"'":
            end = text.find(text[i], i + 1)
            end = len(text) if end < 0 else end
            words.append(text[i + 1:end])
            i = end + 1
        else:
            end = text.find(" ", i)
            end = len(text) if end < 0 else end
            words.append(text[i:end])
            i = end
    return words


#: cygrunsrv options that take no value (cygrunsrv --help).
CYGRUNSRV_SWITCHES = {"--shutdown", "--preshutdown", "--interactive", "--nohide",
                      "--neverexits"}


def read_cygrunsrv(files: Sequence[File], case: Case, tmp: Path) -> Parsed:
    """The params file is JSON (the arguments after ``cygrunsrv --install NAME``):
    ``--path``, ``--args`` (split as cygrunsrv does), ``--chdir``, ``--env N=V``;
    a proxy (``@ENTRY@/bin/NAME-proxy``) is read with sh."""
    params = json.loads(_file(files, r"cygrunsrv/.*\.json"))["params"]
    opts: dict[str, list[str]] = {}
    i = 0
    while i < len(params):
        if params[i] in CYGRUNSRV_SWITCHES:
            i += 1
            continue
        opts.setdefault(params[i], []).append(params[i + 1])
        i += 2
    argv = [opts["--path"][0], *cygrunsrv_split(opts.get("--args", [""])[0])]
    env = dict(e.split("=", 1) for e in opts.get("--env", []))
    directory, pid_file = opts.get("--chdir", [None])[0], None
    if argv[0] == f"@ENTRY@/bin/{case.name}-proxy":
        argv, directory, pid_file = read_proxy(_file(files, r"bin/.*-proxy"), case)
    return Parsed(argv, env, directory, pid_file)


#: Where the part of a start script that sets up the environment ends.
_START_SETUP_END = ("\nif ! procmgmt_proxy_gid=", "\nprocmgmt_make_piddir ",
                    "\nprocmgmt_proxy_pid_file=", "\nprocmgmt_pid_file=", "\nexec ")


def read_s6(files: Sequence[File], case: Case, tmp: Path, top: str = "s6") -> Parsed:
    """s6-supervise runs ``run``, which execs ``./data/start`` or reads it into its own
    shell; sh evaluates that script's environment block (its ``cd`` left out) and
    its command words."""
    run = _file(files, rf"{top}/[^/]+/run")
    last = run.rstrip("\n").rsplit("\n", 1)[-1]
    assert last in ("exec ./data/start", ". ./data/start") or (
        last.startswith("exec s6-notifyoncheck ") and last.endswith(" ./data/start")), last
    start = _file(files, rf"{top}/[^/]+/data/start")
    end = min(i for i in (start.find(m) for m in _START_SETUP_END) if i >= 0)
    setup = re.sub(r"\ncd .*? \|\| exit 1\n", "\n:\n", start[:end], count=1, flags=re.S)
    keys = sorted(case.environment)
    values_ = sh_words(setup + _printf_vars(keys)) if keys else []
    env = {k: v for k, v in zip(keys, values_, strict=True) if v != "<unset>"}
    argv, directory, pid_file = read_proxy(start, case)
    return Parsed(argv, env, directory, pid_file)


def read_s6rc(files: Sequence[File], case: Case, tmp: Path) -> Parsed:
    """The process's s6-rc longrun (not its ``-log`` logger) is an s6 service
    directory as far as ``run`` and ``data/start`` go."""
    own = [f for f in files if f.path.startswith(f"s6-rc/{case.name}/")]
    assert _file(own, r"s6-rc/[^/]+/type") == "longrun\n"
    return read_s6(own, case, tmp, top="s6-rc")


def read_none(files: Sequence[File], case: Case, tmp: Path) -> Parsed:
    """The agnostic spec is JSON of the model's own properties: the program the
    case's mode runs, then ``args``."""
    data = json.loads(_file(files, r"[^/]+\.json"))
    program = data["daemon"] if case.mode == "daemon" else data["foreground_process"]
    return Parsed([program, *data.get("args", [])],
                  {str(k): str(v) for k, v in data.get("environment", {}).items()},
                  data.get("directory"), data.get("pid_file"))


def _dollars(text: str) -> str:
    """What a ``$$``-escaping reader (process-compose's substitution of the file
    text, Kubernetes' ``$(VAR)`` expansion) gives for ``text``: ``$$`` is ``$``,
    and a lone ``$`` would name a variable, which the exports never write."""
    marker = "\0dollar\0"
    rest = text.replace("$$", marker)
    assert "$" not in rest, f"a $ that the reader would expand in {text!r}"
    return rest.replace(marker, "$")


def _go_template(text: str) -> str:
    """A Go template (process-compose renders these fields) whose only actions are
    the documented escape ``{{"{{"}}``, rendered."""
    rendered = text.replace('{{"{{"}}', "\0")
    assert "{{" not in rendered, f"a template action in {text!r}"
    return rendered.replace("\0", "{{")


def _proxy_or_argv(argv: list[str], case: Case, directory: str | None) -> Parsed:
    """An exported argv: the inlined proxy (``/bin/sh -c SCRIPT NAME``) read with sh,
    or the program itself."""
    if argv[:2] == ["/bin/sh", "-c"] and argv[3:] == [case.name]:
        argv, directory, pid_file = read_proxy(argv[2], case)
        return Parsed(argv, directory=directory, pid_file=pid_file)
    return Parsed(argv, directory=directory)


def read_process_compose(files: Sequence[File], case: Case, tmp: Path) -> Parsed:
    """process-compose substitutes variables in the file text (``$$`` is ``$``), then
    reads the YAML; ``entrypoint`` is the argv as written, ``environment`` entries
    and ``working_dir`` are also rendered as Go templates
    (https://f1bonacc1.github.io/process-compose/configuration/)."""
    data = yaml.safe_load(_dollars(_file(files, r"process-compose\.yaml")))
    entry = data["processes"][case.name]
    directory = entry.get("working_dir")
    parsed = _proxy_or_argv(list(entry["entrypoint"]),
                            case, _go_template(directory) if directory else None)
    for item in entry.get("environment", []):
        key, _, value = _go_template(item).partition("=")
        parsed.env[key] = value
    return parsed


def read_kubernetes(files: Sequence[File], case: Case, tmp: Path) -> Parsed:
    """The kubelet runs the container's ``command`` (no shell), ``$(VAR)`` expanded
    and ``$$`` turned into ``$`` there and in ``env`` values; ``workingDir`` as is."""
    docs = list(yaml.safe_load_all(_file(files, r"kubernetes\.yaml")))
    deployment = next(d for d in docs if d["kind"] == "Deployment"
                      and d["metadata"]["name"] == case.name)
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    parsed = _proxy_or_argv([_dollars(w) for w in container["command"]], case,
                            container.get("workingDir"))
    parsed.env.update({e["name"]: _dollars(e["value"]) for e in container.get("env", [])})
    return parsed


def read_docker(files: Sequence[File], case: Case, tmp: Path) -> Parsed:
    """The rules of ``docker create`` (docker run reference): each ``--env`` value is
    one argv word split at its first ``=`` (nothing is unquoted), ``--workdir`` is the
    working directory, and the words after the image are the command's argv (exec
    form: no shell). When the command is the store entry's proxy, sh reads that."""
    doc = json.loads(_file(files, r"docker/[^/]+\.json"))
    create = doc["create"]
    env: dict[str, str] = {}
    directory, pid_file = None, None
    for option, value in zip(create[::2], create[1::2], strict=True):
        assert option.startswith("--"), create
        if option == "--env":
            key, _, val = value.partition("=")
            env[key] = val
        elif option == "--workdir":
            directory = value
    argv = list(doc["command"])
    if doc.get("proxy"):
        assert argv == [], doc
        argv, directory, pid_file = read_proxy(_file(files, re.escape(doc["proxy"])), case)
    return Parsed(argv, env, directory, pid_file)


READERS: dict[str, Callable[[Sequence[File], Case, Path], Parsed]] = {
    "sysvinit": read_sysvinit,
    "bsdrc": read_bsdrc,
    "systemd": read_systemd,
    "supervisord": read_supervisord,
    "launchd": read_launchd,
    "cygrunsrv": read_cygrunsrv,
    "none": read_none,
    "runit": read_runit,
    "s6": read_s6,
    "s6-rc": read_s6rc,
    "process-compose": read_process_compose,
    "kubernetes": read_kubernetes,
    "docker": read_docker,
}


# --------------------------------------------------------------------------- the check


def static_settings(backend: str) -> Settings:
    """Fixed, unprivileged settings (the golden ones) for ``backend``."""
    return golden_settings(backend=backend)


def roundtrip(backend: str, case: Case, tmp: Path) -> Parsed | None:
    """Validate and render ``case``; None when refused (clearly), else what the
    backend's own reader gets back, which must be exactly the input."""
    settings = static_settings(backend)
    model = model_of([case], __file__)
    try:
        specs = validate(model, settings)
        result = render(model, specs, settings)
    except ValidationError as exc:
        refusal_is_clear(exc, backend)
        return None
    # An export writes its one document as a generation file.
    files = [*result.processes[0].files, *result.generation_files]
    reader = READERS.get(backend)
    if reader is None:
        pytest.fail(f"no reader for backend {backend}: add one to READERS")
    parsed = reader(files, case, tmp)
    assert parsed.argv == [case.exe, *case.args], backend
    for key, value in case.environment.items():
        assert parsed.env.get(key) == value, (backend, key)
    if case.directory is not None:
        assert parsed.directory == case.directory, backend
    if case.mode == "daemon" and parsed.pid_file is not None:
        assert parsed.pid_file == case.pid_file, backend
    return parsed


# --------------------------------------------------------------------------- strategies


@st.composite
def cases(draw: st.DrawFn) -> Case:
    """A process whose arguments, environment values, directory and pid file are awkward."""
    mode = draw(st.sampled_from(["foreground", "daemon"]))
    directory = draw(st.none() | COMPONENT.map(lambda c: f"{STATE}/work/{c}"))
    pid = draw(COMPONENT)
    return Case(
        name=draw(NAME),
        args=draw(st.lists(AWKWARD, max_size=5)),
        environment=draw(st.dictionaries(ENV_NAME, AWKWARD, max_size=4)),
        mode=mode,
        directory=directory,
        pid_file=f"{STATE}/run/{pid}.pid" if mode == "daemon" else None,
        exe=draw(st.sampled_from(["/bin/true", "/usr/bin/env", "/opt/my app/bin/it's"])),
    )


#: Fixed nasty cases, each run for every backend besides the generated ones.
NASTY = [
    Case("plain", ["a b", "it's", 'say "hi"', "$HOME", "`id`", "back\\slash", "100%", "x;y",
                   "x ;y", "x #y", "*", "?", "[a-z]", "~", "", "grüße ☃", "tab\there"],
         {"A": "x y", "B": "it's", "C": "$HOME `id`", "D": "100%", "E": "back\\slash",
          "F": "grüße", "G": "*?[a]", "H": "", "I": "a;b", "J": "a=b,c"}),
    Case("newlines", ["line1\nline2", "\n", "cr\rlf"], {"NL": "a\nb"}),
    Case("specifiers", ["%n", "%%", "%(here)s", "%(ENV_HOME)s", "$$", "${X}"],
         {"P": "%n %% %(ENV_HOME)s"}),
    Case("quotes", ["'", '"', "''", '""', "'\"'", "\\'", '\\"'], {"Q": "a'b", "R": 'a"b'}),
    Case("daemon", ["-D", "--pid", "x y"], {"K": "v w"}, mode="daemon",
         directory=f"{STATE}/work/dir with spaces",
         pid_file=f"{STATE}/run/it's $a `pid`.pid"),
    Case("daemon-plain", ["-D"], {}, mode="daemon", directory=f"{STATE}/work/plain",
         pid_file=f"{STATE}/run/daemon-plain.pid"),
    Case("dir-awkward", [], {}, directory=f"{STATE}/work/100% 'quoted' $x;#"),
    Case("dir-newline", [], {}, directory=f"{STATE}/work/new\nline"),
    Case("semicolon", [";", "; rm -rf /", "&&", "|", "a;b"], {"S": ";"}),
]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", NASTY, ids=[c.name for c in NASTY])
def test_fixed_nasty_values(backend: str, case: Case, tmp_path: Path) -> None:
    """Each fixed nasty case is either reproduced exactly by the backend's reader
    or refused at validation with a problem naming the instance and field."""
    roundtrip(backend, case, tmp_path)


@pytest.mark.parametrize("backend", BACKENDS)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                   HealthCheck.function_scoped_fixture])
@given(case=cases())
@example(case=Case("x", ["$(id)"], {"X": "`id`"}))
def test_any_awkward_values(backend: str, case: Case, tmp_path: Path) -> None:
    """Property: any awkward argv/environment/directory/pid file round-trips
    exactly through the generated files, or is refused clearly at validation."""
    roundtrip(backend, case, tmp_path)


def test_representable_values_are_accepted(tmp_path: Path) -> None:
    """Refusing everything would pass the property above: values without line
    breaks, quotes at the edges or comment markers must be accepted and reproduced
    by every backend that can hold them (bsdrc needs plain-word paths)."""
    case = Case("ok", ["a b", "it's", "$HOME", "`id`", "100%", "back\\slash", "é"],
                {"A": "x y", "B": "100%", "C": "$HOME"}, directory=f"{STATE}/work/plain")
    for backend in BACKENDS:
        assert roundtrip(backend, case, tmp_path) is not None, backend


def test_supervisord_refuses_newline_in_environment(tmp_path: Path) -> None:
    """The brief's example: supervisord's environment= cannot hold a newline, so the
    model is refused naming environment.NL, while sysvinit passes it on."""
    case = Case("nl", [], {"NL": "a\nb"})
    if "supervisord" in BACKENDS:
        with pytest.raises(ValidationError) as info:
            validate_and_render("supervisord", case)
        assert any(p.field == "environment.NL" for p in info.value.problems)
    assert roundtrip("sysvinit", case, tmp_path) is not None


def validate_and_render(backend: str, case: Case) -> None:
    """Validate and render, letting the ValidationError through."""
    settings = static_settings(backend)
    model = model_of([case], __file__)
    render(model, validate(model, settings), settings)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", INVALID_NAMES, ids=[repr(n) for n in INVALID_NAMES])
def test_invalid_names_are_refused(backend: str, name: str) -> None:
    """Spaces, '/', '..', a leading '-' and other non-name characters are refused at
    validation for every backend, naming the name field, before anything renders."""
    with pytest.raises(ValidationError) as info:
        validate_and_render(backend, Case(name, []))
    assert any(p.field == "name" for p in info.value.problems), info.value
    assert "invalid name" in str(info.value)


@pytest.mark.parametrize("backend", BACKENDS)
def test_nul_is_refused_everywhere(backend: str) -> None:
    """A NUL cannot reach any process: refused in args, environment and paths."""
    for case, fieldname in ((Case("n", ["a\0b"]), "args"),
                            (Case("n", [], {"K": "a\0b"}), "environment"),
                            (Case("n", [], directory="/srv/a\0b"), "directory")):
        with pytest.raises(ValidationError) as info:
            validate_and_render(backend, case)
        assert any(p.field == fieldname and "NUL" in p.message
                   for p in info.value.problems), info.value
