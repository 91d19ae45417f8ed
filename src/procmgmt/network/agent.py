"""The target side of a network deployment: procmgmt on each host.

The coordinator runs ``python -m procmgmt.network.agent`` on a host (over
pyinfra) once per run and writes it one JSON request per line (``op`` names
what to do); each gets one JSON reply line on stdout (progress of a switch
goes to stderr). The agent ends when its stdin does, after the request under
way: one Python start per host and run, not per request. The host keeps everything
that makes a single-host deployment safe: its own store, generations,
journal, ``repair`` and ``doctor``; the agent only adds what a coordinator
needs on top:

- ``probe``: procmgmt's version, the login user, the current generation
  (number, path, backend, processes) and the network lock's holder; with a
  ``token``, the network lock is taken first;
- ``lock`` / ``unlock``: the network lock (``<profile>.network-lock`` in the
  profiles dir), taken on every host before anything changes anywhere;
- ``receive``: a bundle built by the coordinator (store entries plus a
  manifest naming them by entry name) goes into this host's store, giving
  a generation path here;
- ``step``: switch (the engine's switch, with its own rollback) to a
  generation, or to the subset of its processes named in ``keep`` (one wave
  of the cross-host order), and record it: a path already recorded becomes
  current again under its number, anything else a new number. A step may
  first receive a bundle (and switch to it) and release the lock after.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
import tarfile
import tempfile
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from procmgmt import __version__, fsutil
from procmgmt.deploy import store
from procmgmt.deploy.gc import store_lock
from procmgmt.deploy.profile import Profile
from procmgmt.deploy.state import init_state
from procmgmt.errors import ProcmgmtError, UsageError
from procmgmt.manifest import MANIFEST, Generation, dumps, from_json, load_generation
from procmgmt.settings import Settings, resolve

#: Inside a bundle: the manifest (process paths are entry names) and the entries.
BUNDLE_MANIFEST = "manifest.json"
BUNDLE_ENTRIES = "entries"


def settings_of(request: dict[str, Any]) -> Settings:
    """This host's settings, as the coordinator's infrastructure model gives them."""
    given = request["settings"]
    return resolve({"state_dir": given["state_dir"],
                    "process_manager": given["process_manager"],
                    "profile": given["profile"],
                    "force_disable_user_change": given["force_disable_user_change"]})


#: How a refused lock starts: the coordinator finds the holder after it.
LOCKED_BY = "locked by another network deployment"


def lock_path(settings: Settings) -> str:
    """The network lock of the profile."""
    return os.path.join(settings.profiles_dir, f"{settings.profile}.network-lock")


def _holder(settings: Settings) -> str | None:
    try:
        with open(lock_path(settings)) as f:
            return f.read().strip() or "?"
    except FileNotFoundError:
        return None


def probe(request: dict[str, Any]) -> dict[str, Any]:
    """What the coordinator needs to plan: version, user, current generation, lock."""
    import grp
    import pwd

    settings = settings_of(request)
    if request.get("token"):  # lock first: what the probe says then stays true
        lock(request)
    profile = Profile(settings)
    path = profile.current_path()
    current = None
    if path:
        gen = load_generation(path)
        current = {"number": profile.current_number(), "path": path, **_processes(gen)}
    inspected = {}
    for other in request.get("inspect", []):
        gen = load_generation(other)
        inspected[other] = _processes(gen)
    return {"version": __version__, "user": pwd.getpwuid(os.geteuid()).pw_name,
            "group": grp.getgrgid(os.getegid()).gr_name, "current": current,
            "lock": _holder(settings), "inspected": inspected}


def _processes(gen: Generation) -> dict[str, Any]:
    return {"backend": gen.backend,
            "processes": [{"name": p.name, "hash": p.hash, "dependencies": list(p.dependencies)}
                          for p in gen.processes]}


def lock(request: dict[str, Any]) -> dict[str, Any]:
    """Take the network lock for ``token`` (again: fine, it is ours)."""
    settings = settings_of(request)
    init_state(settings)
    token = request["token"]
    try:
        fd = os.open(lock_path(settings), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        holder = _holder(settings)
        if holder == token:
            return {}
        if holder is not None and holder == request.get("takeover"):
            # The coordinator judged the holder gone: replace its token at once
            # (rename), never a moment without a lock.
            fsutil.write_atomic(lock_path(settings), token + "\n", 0o644)
            return {"took_over": holder}
        raise UsageError(f"{LOCKED_BY} ({holder}); if that deployment is gone, run the "
                         "same network command with --break-lock (a gone coordinator of "
                         "this machine and profile is noticed without it)") from None
    with os.fdopen(fd, "w") as f:
        f.write(token + "\n")
    return {}


def unlock(request: dict[str, Any]) -> dict[str, Any]:
    """Release the network lock if ``token`` holds it."""
    settings = settings_of(request)
    if request.get("bundle"):  # a bundle sent but never received
        with contextlib.suppress(FileNotFoundError):
            os.unlink(os.path.expanduser(request["bundle"]))
    if _holder(settings) == request["token"]:
        os.unlink(lock_path(settings))
    return {}


def _check_lock(settings: Settings, token: str) -> None:
    """The network lock is this deployment's: held by it, or free and taken now (a
    host whose last step released it may be stepped again by a rollback)."""
    holder = _holder(settings)
    if holder is None:
        lock({"settings": _settings_json(settings), "token": token})
    elif holder != token:
        raise UsageError(f"the network lock is not held by this deployment (holder: {holder})")


def _settings_json(settings: Settings) -> dict[str, Any]:
    return {"state_dir": settings.state_dir, "process_manager": settings.process_manager,
            "profile": settings.profile,
            "force_disable_user_change": settings.force_disable_user_change}


def receive(request: dict[str, Any]) -> dict[str, Any]:
    """Unpack a bundle into the store; the path of the generation it holds."""
    settings = settings_of(request)
    _check_lock(settings, request["token"])
    init_state(settings)
    bundle = os.path.expanduser(request["bundle"])
    with store_lock(settings, exclusive=False):
        tmp = tempfile.mkdtemp(prefix=".tmp-receive-", dir=settings.store_dir)
        try:
            _unpack(bundle, tmp)
            entries = os.path.join(tmp, BUNDLE_ENTRIES)
            for name in sorted(os.listdir(entries)) if os.path.isdir(entries) else []:
                dest = os.path.join(settings.store_dir, name)
                if not os.path.exists(dest):  # content-addressed: present means equal
                    source = os.path.join(entries, name)
                    mode = os.stat(source).st_mode & 0o7777
                    os.chmod(source, mode | 0o200)  # moving a directory rewrites its ".."
                    os.rename(source, dest)
                    os.chmod(dest, mode)
            with open(os.path.join(tmp, BUNDLE_MANIFEST)) as f:
                data = json.load(f)
        finally:
            _remove_tree(tmp)
        for proc in data["processes"]:
            proc["path"] = os.path.join(settings.store_dir, proc["path"])
        if data.get("extras"):
            data["extras"] = os.path.join(settings.store_dir, data["extras"])
        gen = from_json(data, "", bundle)
        path = _store_manifest(settings, gen)
    os.unlink(bundle)
    return {"path": path}


def _unpack(bundle: str, into: str) -> None:
    """Extract a bundle: files, directories and symlinks within their own store entry
    only (the bundle comes over the network; nothing in it may land or point outside
    ``into``), no set-id bits, owned by this user."""
    with tarfile.open(bundle) as tar:
        members = tar.getmembers()
        for m in members:
            parts = m.name.split("/")
            inside = not m.name.startswith("/") and ".." not in parts
            if m.issym():
                entry = "/".join(parts[:2])
                pointed = os.path.normpath(os.path.join(os.path.dirname(m.name), m.linkname))
                inside = inside and not m.linkname.startswith("/") and (
                    pointed + "/").startswith(entry + "/")
            if not inside or not (m.isfile() or m.isdir() or m.issym()):
                raise UsageError(f"{bundle}: unexpected member {m.name!r} in the bundle")
            m.mode &= 0o755
            m.uid, m.gid, m.uname, m.gname = os.geteuid(), os.getegid(), "", ""
        tar.extractall(into, members=members)  # members checked above


def _remove_tree(path: str) -> None:
    """Remove a directory whose entries may be read-only (store entries are)."""
    for root, dirs, _ in os.walk(path):
        for d in dirs:
            os.chmod(os.path.join(root, d), 0o700)
    os.chmod(path, 0o700)
    shutil.rmtree(path)


def _store_manifest(settings: Settings, gen: Generation) -> str:
    from procmgmt.backends.base import File

    return store.add(settings.store_dir, f"{settings.profile}-generation", "generation",
                     [File(MANIFEST, dumps(gen), mode=0o600)])


def step(request: dict[str, Any]) -> dict[str, Any]:
    """Switch to ``base`` (None: nothing) or the ``keep`` subset of it, and record it."""
    # Here, not at the top: probe, lock and unlock run without the engine's imports.
    from procmgmt.deploy.engine import Engine
    from procmgmt.deploy.switch import build_model

    settings = settings_of(request)
    _check_lock(settings, request["token"])
    base = request.get("base")
    received = None
    if request.get("bundle"):
        received = base = receive(request)["path"]
    if base is None:
        gen = build_model(settings, None).generation
    else:
        gen = load_generation(base)
        keep = request.get("keep")
        if keep is not None:
            wanted = set(keep)
            subset = replace(gen, processes=tuple(p for p in gen.processes
                                                  if p.name in wanted))
            if subset != gen:
                with store_lock(settings, exclusive=False):
                    gen = load_generation(_store_manifest(settings, subset))
    profile = Profile(settings)

    def register() -> int:
        recorded = [g.number for g in profile.generations() if g.target == gen.path]
        if recorded:
            profile.set_current(max(recorded))
            return max(recorded)
        return profile.add(gen.path)

    result = Engine(settings, out=sys.stderr).switch(gen, register)
    if request.get("unlock"):
        unlock({"settings": request["settings"], "token": request["token"],
                "bundle": request.get("drop")})
    return {"number": result.generation, "path": gen.path, "received": received}


OPS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "probe": probe, "lock": lock, "unlock": unlock, "receive": receive, "step": step,
}


def answer(request: dict[str, Any]) -> dict[str, Any]:
    """The reply to one request (``{"error": ...}`` for a failure procmgmt names)."""
    op = request.get("op")
    if op not in OPS:
        return {"error": f"unknown request {op!r} (one of {', '.join(OPS)})"}
    try:
        return OPS[op](request)
    except ProcmgmtError as exc:
        return {"error": str(exc)}
    except OSError as exc:
        return {"error": f"{exc.filename or ''}: {exc.strerror or exc}".lstrip(": ")}


def main(argv: list[str]) -> int:
    """Answer the requests on stdin, one reply line each, until stdin ends."""
    if len(argv) != 1:
        sys.stderr.write("usage: python -m procmgmt.network.agent  (requests on stdin, one "
                         "JSON object per line)\n")
        return 2
    # Requests and replies get private descriptors; fd 0 becomes /dev/null and fd 1 a
    # copy of stderr, so nothing a switch starts can read a request meant for the
    # agent or write into the replies: whatever it prints is progress.
    requests = os.fdopen(os.dup(0), "r")
    replies = os.fdopen(os.dup(1), "w")
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    for line in requests:
        if not line.strip():
            continue
        try:
            request = json.loads(line)
        except ValueError as exc:
            reply: dict[str, Any] = {"error": f"not a JSON request: {exc}"}
        else:
            reply = answer(request) if isinstance(request, dict) else {
                "error": "a request is a JSON object"}
        replies.write(json.dumps(reply) + "\n")
        replies.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
