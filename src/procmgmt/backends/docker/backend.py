"""docker backend: one container per process, created from the model's fields.

Each process becomes one ``docker create``: its command, environment, user
and working directory; ``--network host`` (ports are the host's, readiness
probes connect to 127.0.0.1 as everywhere else) and ``--pid host`` (pid
files and the pids readiness trusts mean the same inside and outside);
the host's ``/usr`` (and the top-level directories a non-merged layout
has) mounted read-only, as the original mounts ``/nix/store``; the
account files read-only (``--user`` is resolved inside the container); the
deployment's state directories read-write at the same paths. The image is
:mod:`.rootfs`'s almost empty root, built locally.

What docker cannot do itself runs through the shared foreground proxy:
a daemon-only process (the proxy waits for its pid file and stays in the
foreground), ``initialize`` (run as root before dropping to the user),
``umask`` and ``nice``, and waits for dependencies' readiness. Docker has
no start order: procmgmt's engine starts containers in dependency order
and waits for readiness in between (``Ordering.ENGINE``).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Sequence
from typing import Any

from procmgmt.backends.base import (
    SH_READINESS,
    Activator,
    Backend,
    BuildContext,
    Capabilities,
    Coverage,
    File,
    Lifecycle,
    Ordering,
    PidFiles,
    Privilege,
    ProcessMode,
    Support,
)
from procmgmt.backends.docker import oci, plan, rootfs
from procmgmt.backends.docker.activator import DockerActivator
from procmgmt.backends.docker.runc import RuncActivator
from procmgmt.backends.docker.settings import SETTINGS, extra_mounts, runtime
from procmgmt.backends.shared.proxy import (
    PROXY_KEY,
    generate,
    options_from_native,
    proxy_file,
    proxy_params,
    readiness_options,
    readiness_pid_file,
    uses_proxy,
    wraps_daemon,
)
from procmgmt.backends.shared.ready import spec_problems
from procmgmt.errors import Problem
from procmgmt.model.spec import SYSTEM_PATH, ProcessSpec
from procmgmt.settings import Settings
from procmgmt.validate import deployment_id

#: Seconds docker waits after the stop signal before SIGKILL (its own default).
DEFAULT_STOP_TIMEOUT = 10
#: Account files mounted read-only, so ``--user NAME`` and ``id`` resolve as on the host.
ACCOUNT_FILES = ("/etc/passwd", "/etc/group")
#: Characters a ``--mount`` path must not hold (docker reads the value as a CSV record).
MOUNT_UNSAFE = (",", '"', "\n", "\r", "=")


def container_name(settings: Settings, name: str) -> str:
    """``procmgmt-<name>-<8 hex digits of the deployment>``: unique per deployment on
    one dockerd, so two state dirs or profiles never fight over a container."""
    tag = hashlib.sha256(deployment_id(settings).encode()).hexdigest()[:8]
    return f"procmgmt-{name}-{tag}"


def state_mounts(settings: Settings) -> list[str]:
    """The settings' directories, without those inside another one, sorted."""
    dirs = sorted({os.path.normpath(d) for d in (
        settings.state_dir, settings.runtime_dir, settings.log_dir, settings.tmp_dir,
        settings.cache_dir, settings.spool_dir, settings.lock_dir, settings.lib_dir)})
    return [d for d in dirs
            if not any(d != o and (d + "/").startswith(o.rstrip("/") + "/") for o in dirs)]


def mounts(settings: Settings) -> list[dict[str, Any]]:
    """Every bind mount of a container: host directories and account files
    read-only, ``PROCMGMT_DOCKER_MOUNTS`` read-only, state directories read-write."""
    out: list[dict[str, Any]] = []
    for path in (*rootfs.host_dirs(), *ACCOUNT_FILES, *extra_mounts()):
        out.append({"source": path, "target": path, "readonly": True})
    for path in state_mounts(settings):
        out.append({"source": path, "target": path, "readonly": False})
    return out


def visible(path: str, native: dict[str, Any]) -> bool:
    """Whether ``path`` (absolute) is inside the container: under a mount or a link
    of the image into ``/usr``."""
    top = path.lstrip("/").split("/", 1)[0]
    if top in {name for name, _ in rootfs.host_links()}:
        return True
    return any(path == m["target"] or path.startswith(m["target"].rstrip("/") + "/")
               for m in native.get("mounts") or [])


class DockerBackend(Backend):
    """One container per process in a dockerd named by ``PROCMGMT_DOCKER_SOCKET``."""

    name = "docker"
    own_settings = SETTINGS
    capabilities = Capabilities(
        prefers=ProcessMode.FOREGROUND,
        dependencies=Support.EMULATED,
        ordering=Ordering.ENGINE,
        ordering_detail="docker has no start order: procmgmt creates and starts the "
                        "containers in dependency order, stops them in reverse",
        user_switching=Support.NATIVE,
        privileges=frozenset({Privilege.ROOT, Privilege.UNPRIVILEGED}),
        tested=Coverage.RUN,
        readiness=Support.EMULATED,
        readiness_kinds=SH_READINESS,
        pid_files=PidFiles.DAEMONS,
        lifecycle=Lifecycle(default_restart="no",
                            restart_native=frozenset({"no", "on-failure", "always"}),
                            restart_max=Support.WARNED,
                            default_stop_timeout=DEFAULT_STOP_TIMEOUT,
                            stop_timeout=Support.NATIVE),
        notes="one container per process (--network host, --pid host, host /usr "
              "read-only, state dirs mounted), image built locally; daemon-only "
              "processes, initialize, umask and nice run under the foreground proxy; "
              "restart_max is carried with restart='on-failure' only (on-failure:N), "
              "dropped with a warning otherwise; under dockerd as root, under runc "
              "(PROCMGMT_DOCKER_RUNTIME, the default for an ordinary user: rootless, "
              "no restart policy but 'no', output in <log_dir>/<container>.log)",
    )

    def translate(self, spec: ProcessSpec, ctx: BuildContext) -> dict[str, Any]:
        """The container's settings; the proxy's under ``_proxy`` when one is needed."""
        settings = ctx.settings
        user = spec.effective_user(settings)
        env = {"PATH": f"{spec.path_value()}:{SYSTEM_PATH}" if spec.path_value()
               else SYSTEM_PATH, **spec.environment}
        native: dict[str, Any] = {
            "container": container_name(settings, spec.name),
            "image": rootfs.layout().tag,
            "labels": {plan.DEPLOYMENT_LABEL: deployment_id(settings),
                       plan.PROCESS_LABEL: spec.name},
            "network": "host",
            "pid": "host",
            "environment": env,
            "mounts": mounts(settings),
            "restart": spec.restart or "no",
            "stop_signal": spec.stop_signal,
            "stop_timeout": (DEFAULT_STOP_TIMEOUT if spec.stop_timeout is None
                             else max(1, math.ceil(spec.stop_timeout))),
        }
        rotation = settings.log_rotation()
        if rotation is not None:
            # dockerd's json-file log driver rotates by itself; max-file counts the
            # live file too (docker's "json-file logging driver" options).
            native["log_options"] = {"max-size": str(rotation[0]),
                                     "max-file": str(rotation[1] + 1)}
        if spec.restart_max is not None:
            if spec.restart == "on-failure":
                native["restart_max"] = spec.restart_max
            else:
                ctx.warn(spec, self.name, "docker counts restarts only with "
                         "restart='on-failure' (--restart on-failure:N): restart_max "
                         f"{spec.restart_max} is dropped")
        if uses_proxy(spec, ctx, manager_lacks=bool(spec.umask) or spec.nice is not None):
            wrap = spec.foreground is None
            write_pid = readiness_pid_file(spec, ctx)
            native["stop_signal"] = "TERM" if wrap else spec.stop_signal
            native["proxy"] = proxy_file(spec.name)
            native[PROXY_KEY] = {
                **proxy_params(spec, settings, write_pid=write_pid, user=user),
                **readiness_options(spec, ctx, settings, pid_waits=False),
            }
            exes = native[PROXY_KEY]["command"][:1]
        else:
            assert spec.foreground is not None
            native["command"] = [spec.foreground, *spec.foreground_args]
            if user:
                native["user"] = user
            if spec.directory:
                native["workdir"] = spec.directory
            exes = [spec.foreground]
        for exe in exes:
            if os.path.isabs(exe) and not visible(exe, native):
                ctx.warn(spec, self.name, f"{exe} is outside the paths mounted into the "
                         "container (/usr, the state dirs): add its directory to "
                         "PROCMGMT_DOCKER_MOUNTS")
        return native

    def render(self, native: dict[str, Any], spec: ProcessSpec, ctx: BuildContext) -> list[File]:
        """``docker/<name>.json`` (the create options, image and command, and runc's
        part of the same container) and the proxy."""
        doc = {
            "container": native["container"],
            "create": plan.create_options(native),
            "image": native["image"],
            "command": plan.command(native),
            "user": native.get("user"),
            "proxy": native.get("proxy"),
            "runc": oci.runc_block(native),
        }
        files = [File(f"docker/{spec.name}.json", json.dumps(doc, indent=2) + "\n")]
        proxy = native.get(PROXY_KEY)
        if proxy:
            files.append(File(proxy_file(spec.name), generate(options_from_native(proxy)),
                              0o755))
        return files

    def manifest_extra(self, native: dict[str, Any], spec: ProcessSpec,
                       ctx: BuildContext) -> dict[str, Any]:
        """The plan file, the container name and whether the proxy wraps a daemon."""
        extra: dict[str, Any] = {"plan": f"docker/{spec.name}.json",
                                 "container": native["container"],
                                 "wraps_daemon": wraps_daemon(native.get(PROXY_KEY))}
        if spec.stop_timeout is not None:
            extra["stop_timeout"] = native.get("stop_timeout", DEFAULT_STOP_TIMEOUT)
        return extra

    def validate(self, specs: Sequence[ProcessSpec], ctx: BuildContext) -> list[Problem]:
        """NUL characters, uncheckable readiness, and mount paths that docker's
        ``--mount`` cannot carry."""
        problems: list[tuple[str, str, str]] = []
        paths = [*state_mounts(ctx.settings), *extra_mounts()]
        bad = [p for p in paths if any(c in p for c in MOUNT_UNSAFE)]
        for spec in specs:
            for fieldname, words in (("daemon_args", (spec.daemon or "", *spec.daemon_args)),
                                     ("foreground_process_args",
                                      (spec.foreground or "", *spec.foreground_args))):
                if any("\0" in w for w in words):
                    problems.append((spec.name, fieldname, "contains a NUL character"))
            problems.extend(spec_problems(spec))
            for path in bad:
                problems.append((spec.name, "settings", f"docker cannot mount {path!r}: "
                                 "a path with a comma, quote, '=' or newline"))
        return ctx.problems(problems)

    def activator(self, settings: Settings) -> Activator:
        """The runtime of ``PROCMGMT_DOCKER_RUNTIME``: the dockerd of
        ``PROCMGMT_DOCKER_SOCKET``, or runc (rootless for an ordinary user)."""
        if runtime() == "runc":
            return RuncActivator(settings)
        return DockerActivator(settings)
