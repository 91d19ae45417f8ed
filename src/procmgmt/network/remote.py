"""How the coordinator runs procmgmt on a target, and installs it there if missing.

Every host runs ``<venv>/bin/python -m procmgmt.network.agent`` once per
coordinator run and is asked one JSON request per line (the ordinary
``procmgmt`` command line for status and logs), with the target's
settings from the infrastructure model; a ``~/`` venv means the login
user's home. When the venv has no procmgmt, it is created with the
target's ``python3 -m venv`` and the package is installed: from the
target's ``install_from`` file (copied over first), else from wheels of the
coordinator's own procmgmt and its requirements (:mod:`.wheels`), with no
package index: the target gets this very version, offline.
"""

from __future__ import annotations

import json
import os
import shlex
import tempfile
from collections.abc import Mapping, Sequence
from typing import Any

from procmgmt import __version__
from procmgmt.errors import DeployError
from procmgmt.network.infrastructure import Target
from procmgmt.network.reach import Hosts, Result


def _path(path: str) -> str:
    """A remote path for the shell (``~/x`` -> ``"$HOME"/x``)."""
    if path == "~" or path.startswith("~/"):
        rest = path[2:]
        return '"$HOME"' + (f"/{shlex.quote(rest)}" if rest else "")
    return shlex.quote(path)


def python(target: Target) -> str:
    """The target's Python that has procmgmt."""
    return _path(os.path.join(target.venv, "bin", "python"))


def settings_json(target: Target) -> dict[str, Any]:
    """The settings procmgmt runs with on the target."""
    return {"state_dir": target.state_dir, "process_manager": target.process_manager,
            "profile": target.profile,
            "force_disable_user_change": target.force_disable_user_change}


def settings_flags(target: Target) -> str:
    """The same settings as command-line options of ``procmgmt``."""
    flags = ["--state-dir", target.state_dir, "--profile", target.profile,
             "--process-manager", target.process_manager]
    if target.force_disable_user_change:
        flags.append("--force-disable-user-change")
    return " ".join(shlex.quote(f) for f in flags)


def agent_command(target: Target) -> str:
    """The command of the target's agent session."""
    return f"{python(target)} -m procmgmt.network.agent"


def agent(hosts: Hosts, op: str, requests: Mapping[str, dict[str, Any]]
          ) -> dict[str, dict[str, Any] | Result]:
    """Ask agent ``op`` of each named host with its request: the reply, or the failed
    :class:`Result` (unreachable, procmgmt missing, or the agent's ``error``).

    Each host's agent is one process for the whole run (``agent`` reading a request
    per line, :meth:`Hosts.call`): the second and later requests cost no Python
    start and no imports there."""
    commands = {h: agent_command(hosts.targets[h]) for h in requests}
    lines = {h: json.dumps({"op": op, "settings": settings_json(hosts.targets[h]), **r}) + "\n"
             for h, r in requests.items()}
    out: dict[str, dict[str, Any] | Result] = {}
    for host, result in hosts.call(commands, lines).items():
        reply = _reply(result.stdout)
        if reply is None:
            tail = " | ".join(result.stderr.strip().splitlines()[-3:])
            out[host] = Result(False, result.stdout, result.stderr,
                               result.error or f"no reply from procmgmt on the host ({tail})")
        elif "error" in reply:
            out[host] = Result(False, result.stdout, result.stderr, reply["error"])
        else:
            out[host] = reply
    return out


def _reply(stdout: str) -> dict[str, Any] | None:
    for line in reversed(stdout.strip().splitlines()):
        try:
            data = json.loads(line)
        except ValueError:
            continue
        if isinstance(data, dict):
            return data
    return None


def lacks_procmgmt(result: Result) -> bool:
    """True when a call failed because the target's venv has no procmgmt (or is not
    there at all): what :func:`install` fixes."""
    return result.error is not None and (
        "No module named procmgmt" in result.stderr
        or ("python" in result.stderr and ("not found" in result.stderr
                                           or "No such file" in result.stderr)))


def install(hosts: Hosts, missing: Sequence[str]) -> None:
    """Create each named target's venv and install procmgmt into it: its
    ``install_from`` package, else the coordinator's own procmgmt and requirements
    as wheels (:mod:`.wheels`), installed with no package index."""
    from procmgmt.network.wheels import wheelhouse

    own = [h for h in missing if not hosts.targets[h].install_from]
    with tempfile.TemporaryDirectory(prefix="procmgmt-wheels-") as tmp:
        wheels = wheelhouse(tmp) if own else []
        remote_dir = f".procmgmt-wheels-{os.getpid()}"
        failed = {h: r.reason() for h, r in hosts.run(
            {h: f"mkdir -p {remote_dir}" for h in own}).items() if not r.ok}
        puts: list[dict[str, tuple[str, str]]] = [
            {h: (w, f"{remote_dir}/{os.path.basename(w)}") for h in own if h not in failed}
            for w in wheels]
        puts.append({h: (src, os.path.basename(src)) for h in missing
                     if (src := hosts.targets[h].install_from)})
        for files in puts:
            failed.update({h: r.reason() for h, r in hosts.put(files).items() if not r.ok})
        commands = {}
        for h in missing:
            if h in failed:
                continue
            venv = _path(hosts.targets[h].venv)
            source = hosts.targets[h].install_from
            pip = (f"python3 -m venv {venv} && {venv}/bin/python -m pip install --quiet "
                   "--disable-pip-version-check")
            if source:
                commands[h] = f"{pip} {shlex.quote(os.path.basename(source))}"
            else:
                commands[h] = (f"{pip} --no-index --find-links {remote_dir} "
                               f"{shlex.quote(f'procmgmt=={__version__}')}; "
                               f"status=$?; rm -rf {remote_dir}; exit $status")
        for h, r in hosts.run(commands).items():
            if not r.ok:
                failed[h] = r.reason()
    if failed:
        raise DeployError("could not install procmgmt on " + "; ".join(
            f"{h}: {why}" for h, why in sorted(failed.items())) + "; nothing was changed")
