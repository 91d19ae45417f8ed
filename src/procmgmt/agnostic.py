"""Backend-agnostic JSON specs: write a model's processes out, translate them late.

nix-processmgmt evaluates a model with ``processManager = null`` into one
``<name>.json`` per process (its *raw* properties) and translates such a
file later, maybe on another machine, with ``nixproc-generate-config -P
MANAGER``. procmgmt does the same:

- :func:`spec_files` turns a validated model into ``<name>.json`` files
  (``procmgmt build -P none`` / ``procmgmt generate -P none``). Keys are the
  :class:`~procmgmt.model.process.Process` field names; only what the model
  set is written (as Nix writes only the arguments a constructor passed), so
  ``process``/``args`` stay shortcuts and the target backend still picks
  daemon or foreground mode. A dependency is the *relative file name* of its
  spec (``"webapp1.json"``), so a directory of specs can be copied anywhere.
- :func:`load_specs` reads a spec and, recursively, its dependencies back
  into a :class:`~procmgmt.model.loader.Model` of ordinary ``Process``
  objects, so validation and every backend run exactly as for a Python
  model. It also reads what nix-processmgmt writes: camelCase keys
  (``foregroundProcess``, ``daemonExtraArgs``, ``pidFile``, credentials'
  ``homeDir``/``createHomeDir``...) and dependencies given as store paths
  ``/nix/store/<hash>-<name>``, resolved like
  ``create-managed-process-from-config.nix`` does (``<path>/<name>.json``)
  or, when that store path does not exist here, as ``<name>.json`` next to
  the referencing file.

Derived values (a pid file computed from the state dir, the Nix store paths
of executables) are written as they were when the spec was built, exactly
as in nix-processmgmt: translate with settings that match them.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import Any

from procmgmt.backends.base import File
from procmgmt.errors import Problem, SpecError, ValidationError
from procmgmt.model.credentials import Credentials, Group, User
from procmgmt.model.loader import Model
from procmgmt.model.process import _UNSET, Instance, Process
from procmgmt.model.spec import normalize_umask
from procmgmt.readiness import KINDS, Liveness, from_json
from procmgmt.settings import Settings
from procmgmt.validate import validate

SPEC_SUFFIX = ".json"

#: Spec keys (Process field names) and the camelCase names nix-processmgmt uses.
KEYS: dict[str, str] = {
    "name": "name",
    "description": "description",
    "initialize": "initialize",
    "process": "process",
    "args": "args",
    "daemon": "daemon",
    "daemon_extra_args": "daemonExtraArgs",
    "daemon_args": "daemonArgs",
    "foreground_process": "foregroundProcess",
    "foreground_process_extra_args": "foregroundProcessExtraArgs",
    "foreground_process_args": "foregroundProcessArgs",
    "instance_name": "instanceName",
    "pid_file": "pidFile",
    "pid_file_program": "pidFileProgram",
    "path": "path",
    "environment": "environment",
    "directory": "directory",
    "umask": "umask",
    "nice": "nice",
    "user": "user",
    "dependencies": "dependencies",
    "credentials": "credentials",
    "overrides": "overrides",
    "readiness": "readiness",
    "stop_signal": "stopSignal",
    "restart": "restart",
    "restart_delay": "restartDelay",
    "restart_max": "restartMax",
    "stop_timeout": "stopTimeout",
    "liveness": "liveness",
    # nix-processmgmt's build hook: accepted only when empty (see _post_install).
    "post_install": "postInstall",
}
USER_KEYS: dict[str, str] = {
    "uid": "uid", "group": "group", "description": "description", "home_dir": "homeDir",
    "shell": "shell", "password": "password", "create_home": "createHomeDir",
    "create_home_only": "createHomeDirOnly",
}
GROUP_KEYS: dict[str, str] = {"gid": "gid"}
#: Fields copied verbatim into Process (validation checks their types).
_PLAIN = ("name", "description", "initialize", "process", "args", "daemon", "daemon_extra_args",
          "daemon_args", "foreground_process", "foreground_process_extra_args",
          "foreground_process_args", "instance_name", "pid_file", "path", "environment",
          "directory", "umask", "nice", "user", "overrides", "stop_signal", "pid_file_program",
          "restart", "restart_delay", "restart_max", "stop_timeout")
#: A Nix store path's base name: 32 base-32 characters, a dash, the name.
_STORE_BASENAME = re.compile(r"^[0-9a-z]{32}-(.+)$")


def _known(table: Mapping[str, str]) -> str:
    return ", ".join(k if k == c else f"{k} ({c})" for k, c in table.items())


# --- writing -----------------------------------------------------------------------

def _json_problem(value: Any, where: str) -> str | None:
    """Where ``value`` stops being plain JSON (None when it is), e.g. ``overrides.systemd.X``."""
    if value is None or isinstance(value, (str, bool, int)):
        return None
    if isinstance(value, float):
        return None if math.isfinite(value) else f"{where}: {value!r} is not a JSON number"
    if isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            found = _json_problem(item, f"{where}[{i}]")
            if found:
                return found
        return None
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                return f"{where}: key {key!r} is not a string"
            found = _json_problem(item, f"{where}.{key}")
            if found:
                return found
        return None
    kind = "a function" if callable(value) else f"a {type(value).__name__}"
    return f"{where}: {kind} cannot be written as JSON"


def _account(obj: Group | User, defaults: Group | User) -> dict[str, Any]:
    """Fields that differ from the defaults (Nix writes only what was given)."""
    return {f.name: getattr(obj, f.name) for f in fields(obj)
            if getattr(obj, f.name) != getattr(defaults, f.name)}


def process_json(proc: Process, dep_file: Callable[[Process], str]) -> tuple[dict[str, Any],
                                                                             list[tuple[str, str]]]:
    """The spec dict of a *validated* process, and (field, message) for what JSON cannot hold."""
    data: dict[str, Any] = {"name": proc.effective_name}
    problems: list[tuple[str, str]] = []
    for key in ("description", "process", "instance_name", "pid_file", "directory", "user",
                "nice", "stop_signal", "pid_file_program", "restart", "restart_delay",
                "restart_max", "stop_timeout"):
        if getattr(proc, key) is not None:
            data[key] = getattr(proc, key)
    if proc.initialize:
        data["initialize"] = proc.initialize
    for key in ("args", "daemon_extra_args", "foreground_process_extra_args", "path"):
        if getattr(proc, key):
            data[key] = list(getattr(proc, key))
    for key in ("daemon_args", "foreground_process_args"):
        if getattr(proc, key) is not None:
            data[key] = list(getattr(proc, key))
    # UNSET (absent: defaults to ``process``) differs from None ("cannot run in this mode").
    for key in ("daemon", "foreground_process"):
        if getattr(proc, key) is not _UNSET:
            data[key] = getattr(proc, key)
    if proc.environment:
        data["environment"] = dict(proc.environment)
    if proc.umask is not None:
        data["umask"] = normalize_umask(proc.umask)
    if proc.dependencies:
        data["dependencies"] = [dep_file(d) for d in proc.dependencies]
    if not proc.credentials.is_empty():
        data["credentials"] = {
            "groups": {n: _account(g, Group()) for n, g in proc.credentials.groups.items()},
            "users": {n: _account(u, User()) for n, u in proc.credentials.users.items()},
        }
    if proc.overrides:
        overrides: dict[str, Any] = {}
        for backend, value in proc.overrides.items():
            if callable(value):
                problems.append((f"overrides.{backend}", "a function override cannot be written "
                                 "as JSON: use a dict override, or translate the Python model "
                                 "directly"))
                continue
            why = _json_problem(value, f"overrides.{backend}")
            if why:
                field, _, message = why.partition(": ")
                problems.append((field, message))
                continue
            overrides[backend] = value
        data["overrides"] = overrides
    if proc.readiness is not None:
        data["readiness"] = proc.readiness.to_json()
    if proc.liveness is not None:
        data["liveness"] = proc.liveness.to_json()
    return data, problems


def spec_files(model: Model, settings: Settings) -> list[File]:
    """``<name>.json`` for every process of ``model`` (validated first); dependencies by file name.

    A value JSON cannot hold (a function override, a set) is reported with
    the others, naming the process and field, instead of being dropped.
    """
    validate(model, settings)
    name_of = {id(inst.process): inst.process.effective_name or key
               for key, inst in model.instances.items()}
    files: list[File] = []
    problems: list[Problem] = []
    for key, inst in model.instances.items():
        data, bad = process_json(inst.process, lambda d: f"{name_of[id(d)]}{SPEC_SUFFIX}")
        file, line = inst.origin if inst.origin[0] else inst.process.origin
        problems += [Problem(message, key, field, file or model.file, line)
                     for field, message in bad]
        text = json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
        files.append(File(f"{name_of[id(inst.process)]}{SPEC_SUFFIX}", text))
    if problems:
        raise ValidationError(problems)
    return files


# --- reading -----------------------------------------------------------------------

def _normalize_keys(data: Mapping[str, Any], table: Mapping[str, str], file: str,
                    where: str) -> dict[str, Any]:
    """camelCase -> snake_case; unknown or doubled keys are errors listing the known ones."""
    by_alias = {**{k: k for k in table}, **{c: k for k, c in table.items()}}
    out: dict[str, Any] = {}
    for key, value in data.items():
        canonical = by_alias.get(key)
        if canonical is None:
            raise SpecError(f"{file}: unknown key {where}{key!r}; known keys: {_known(table)}")
        if canonical in out:
            raise SpecError(f"{file}: {where}{key!r} is given twice "
                            f"(as {canonical!r} and {table[canonical]!r})")
        out[canonical] = value
    return out


def _account_kwargs(props: Any, table: Mapping[str, str], file: str,
                    where: str) -> dict[str, Any]:
    """Checked keyword arguments of a Group or User from its JSON properties."""
    if not isinstance(props, Mapping):
        raise SpecError(f"{file}: {where[:-1]} must be an object of properties")
    kwargs = _normalize_keys(props, table, file, where)
    for k, v in kwargs.items():
        if k.startswith("create_home"):
            ok, kind = isinstance(v, bool), "boolean"
        elif k in ("uid", "gid"):
            ok, kind = isinstance(v, int) and not isinstance(v, bool), "integer"
        else:
            ok, kind = isinstance(v, str), "string"
        if not ok:
            raise SpecError(f"{file}: {where}{k} must be a {kind}, got {v!r}")
    return kwargs


def _credentials(value: Any, file: str) -> Credentials:
    if not isinstance(value, Mapping):
        raise SpecError(f"{file}: credentials must be an object with 'groups' and 'users'")
    creds = _normalize_keys(value, {"groups": "groups", "users": "users"}, file, "credentials.")
    sections: dict[str, Mapping[str, Any]] = {}
    for section in ("groups", "users"):
        entries = creds.get(section) or {}
        if not isinstance(entries, Mapping):
            raise SpecError(f"{file}: credentials.{section} must be an object of name -> "
                            "properties")
        sections[section] = entries
    groups = {str(n): Group(**_account_kwargs(p, GROUP_KEYS, file, f"credentials.groups.{n}."))
              for n, p in sections["groups"].items()}
    users = {str(n): User(**_account_kwargs(p, USER_KEYS, file, f"credentials.users.{n}."))
             for n, p in sections["users"].items()}
    return Credentials(groups=groups, users=users)


def _readiness(value: Any, file: str) -> Any:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise SpecError(f"{file}: readiness must be an object such as "
                        '{"kind": "tcp", "port": 5000}')
    cls = KINDS.get(str(value.get("kind")))
    if cls is None:
        raise SpecError(f"{file}: readiness.kind {value.get('kind')!r} is unknown; known: "
                        + ", ".join(sorted(KINDS)))
    known = ["kind", *(f.name for f in fields(cls))]
    for key in value:
        if key not in known:
            raise SpecError(f"{file}: unknown key readiness.{key!r} for kind "
                            f"{value['kind']!r}; known keys: {', '.join(known)}")
    try:
        return from_json(value)
    except (TypeError, ValueError) as exc:
        raise SpecError(f"{file}: readiness: {exc}") from None


def _liveness(value: Any, file: str) -> Any:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise SpecError(f"{file}: liveness must be an object such as "
                        '{"check": {"kind": "tcp", "port": 5000}, "period": 10}')
    known = [f.name for f in fields(Liveness)]
    for key in value:
        if key not in known:
            raise SpecError(f"{file}: unknown key liveness.{key!r}; known keys: "
                            + ", ".join(known))
    check = _readiness(value.get("check"), file)
    if check is None:
        raise SpecError(f"{file}: liveness needs a check such as "
                        '{"kind": "tcp", "port": 5000}')
    return Liveness(check=check, **{k: v for k, v in value.items() if k != "check"})


def dependency_file(ref: str, referrer: str) -> tuple[str, list[str]]:
    """The spec file a dependency entry names, and every path that was tried.

    ``"webapp1.json"`` (procmgmt) is relative to the referencing file; a Nix
    store path ``/nix/store/<hash>-webapp1`` is ``<path>/webapp1.json`` as in
    create-managed-process-from-config.nix, else ``webapp1.json`` next to
    the referencing file (specs copied out of the store).
    """
    base_dir = os.path.dirname(referrer)
    if ref.endswith(SPEC_SUFFIX):
        path = os.path.normpath(os.path.join(base_dir, ref))
        return path, [path]
    base = os.path.basename(ref.rstrip("/"))
    match = _STORE_BASENAME.match(base)
    name = match.group(1) if match else base
    tried = []
    if os.path.isabs(ref):
        tried.append(os.path.join(ref, f"{name}{SPEC_SUFFIX}"))
    tried.append(os.path.join(base_dir, f"{name}{SPEC_SUFFIX}"))
    for path in tried:
        if os.path.isfile(path):
            return path, tried
    return tried[-1], tried


@dataclass
class _Reader:
    """Reads a spec and its dependencies once each; detects cycles."""

    loaded: dict[str, Process]
    stack: list[str]

    def read(self, path: str) -> Process:
        path = os.path.realpath(path)
        if path in self.stack:
            cycle = [*self.stack[self.stack.index(path):], path]
            raise SpecError(f"{self.stack[-1]}: dependency cycle: "
                            + " -> ".join(os.path.basename(p) for p in cycle))
        if path in self.loaded:
            return self.loaded[path]
        try:
            with open(path, encoding="utf-8") as f:
                text = f.read()
        except OSError as exc:
            raise SpecError(f"{path}: cannot read the spec: {exc.strerror or exc}") from None
        except UnicodeDecodeError as exc:
            raise SpecError(f"{path}: not UTF-8 text ({exc.reason})") from None
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as exc:
            raise SpecError(f"{path}:{exc.lineno}:{exc.colno}: not valid JSON: {exc.msg}") \
                from None
        if not isinstance(raw, dict):
            raise SpecError(f"{path}: expected a JSON object of process properties, got "
                            f"{type(raw).__name__}")
        data = _normalize_keys(raw, KEYS, path, "")
        post_install = data.pop("post_install", "")
        if post_install:
            raise SpecError(f"{path}: postInstall holds Nix build commands, which procmgmt "
                            "cannot run; remove it (or generate those files another way)")
        kwargs: dict[str, Any] = {k: data[k] for k in _PLAIN if k in data}
        for key in ("args", "daemon_extra_args", "foreground_process_extra_args", "path"):
            if kwargs.get(key) is None:
                kwargs.pop(key, None)  # null: the default, as an absent key
        if kwargs.get("initialize") is None:
            kwargs.pop("initialize", None)
        if "environment" in kwargs and kwargs["environment"] is None:
            kwargs["environment"] = {}
        if "overrides" in kwargs and kwargs["overrides"] is None:
            kwargs["overrides"] = {}
        if data.get("credentials") is not None:
            kwargs["credentials"] = _credentials(data["credentials"], path)
        kwargs["readiness"] = _readiness(data.get("readiness"), path)
        kwargs["liveness"] = _liveness(data.get("liveness"), path)
        deps = data.get("dependencies") or []
        if not isinstance(deps, list) or not all(isinstance(d, str) for d in deps):
            raise SpecError(f"{path}: dependencies must be a list of spec file names "
                            f"(\"webapp.json\") or store paths, got {deps!r}")
        self.stack.append(path)
        try:
            dependencies = []
            for ref in deps:
                dep_path, tried = dependency_file(ref, path)
                if not os.path.isfile(dep_path):
                    raise SpecError(f"{path}: dependency {ref!r}: no spec file found (tried "
                                    + ", ".join(tried) + ")")
                dependencies.append(self.read(dep_path))
        finally:
            self.stack.pop()
        proc = Process(**kwargs, dependencies=dependencies, origin=(path, None))
        self.loaded[path] = proc
        return proc


def load_specs(path: str) -> Model:
    """The spec at ``path`` and everything it depends on, as a model to validate and render."""
    if not os.path.isfile(path):
        raise SpecError(f"{path}: no such spec file")
    reader = _Reader(loaded={}, stack=[])
    top = reader.read(path)
    instances: dict[str, Instance] = {}
    files: dict[str, str] = {}
    # Dependencies first: the model's dict order is the order files were read in.
    for file, proc in reader.loaded.items():
        key = proc.effective_name or os.path.basename(file).removesuffix(SPEC_SUFFIX)
        if not isinstance(key, str):
            key = os.path.basename(file).removesuffix(SPEC_SUFFIX)
        if key in instances:
            raise SpecError(f"{file}: process name {key!r} is also used by {files[key]}")
        inst = Instance(proc)
        inst.origin = (file, None)
        instances[key] = inst
        files[key] = file
    assert top in (i.process for i in instances.values())
    return Model(file=os.path.realpath(path), instances=instances)
