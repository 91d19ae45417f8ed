"""The Kubernetes export: each process a container, in a Deployment or in one Pod.

What maps to what (docs/backends.md, kubernetes, says the same for users):

* the program and arguments are the container's ``command`` (Kubernetes
  expands ``$(VAR)`` there and in ``env`` values and turns ``$$`` into
  ``$``, so every ``$`` is written ``$$``); a process that only daemonizes,
  or has ``initialize``, a umask or a nice level, runs through the
  foreground proxy inlined as ``/bin/sh -c`` (a container's main process
  must stay in the foreground);
* readiness becomes a ``readinessProbe``: ``tcpSocket``, ``httpGet`` or an
  ``exec`` probe running the shared sh check; the model has no liveness
  check, so no ``livenessProbe`` is written;
* dependencies: in a Deployment, an init container per dependency waits
  until the dependency's TCP or HTTP check passes through its Service; in
  the Pod, a dependent's proxy waits on the loopback address (containers of
  a Pod share it; init containers would run before every container);
* ``user`` becomes ``securityContext.runAsUser``/``runAsGroup`` where the model
  or the ids file gives the numbers (Kubernetes takes no names);
* ``stop_timeout`` is ``terminationGracePeriodSeconds``; every container is
  restarted (``restartPolicy: Always``, the only policy of a Deployment).

Every container runs the image of ``PROCMGMT_KUBERNETES_IMAGE``; it must
hold the model's programs at the model's paths.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from procmgmt import readiness as rd
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
    ProcessMode,
    Support,
)
from procmgmt.backends.kubernetes import objects
from procmgmt.backends.shared import liveness, ready, yamlout
from procmgmt.backends.shared.exports import (
    dollars_doubled,
    inline_argv,
    needs_proxy,
    proxy_native,
    whole_seconds,
)
from procmgmt.backends.shared.proxy import PROXY_KEY
from procmgmt.errors import Problem, UsageError
from procmgmt.ids import credentials_with_ids
from procmgmt.model.spec import SYSTEM_PATH, ProcessSpec
from procmgmt.settings import SettingField, Settings

#: The file this export writes.
DOCUMENT = "kubernetes.yaml"
#: The image when none is set: Debian 12, the system procmgmt is tested on; it
#: holds /bin/sh for the proxy and the probes, not the model's programs.
DEFAULT_IMAGE = "debian:bookworm-slim"
#: Kubernetes' default terminationGracePeriodSeconds.
DEFAULT_GRACE = 30
MODES = ("deployment", "pod")

IMAGE_SETTING = SettingField(
    "kubernetes_image", None, "PROCMGMT_KUBERNETES_IMAGE", "str",
    "container image of every process (-P kubernetes); it must hold the model's programs "
    "at the model's paths", default=DEFAULT_IMAGE)
MODE_SETTING = SettingField(
    "kubernetes_mode", None, "PROCMGMT_KUBERNETES_MODE", "str",
    "'deployment': a Deployment per process, and a Service for each with a port; 'pod': "
    "one Pod per generation, a container per process (-P kubernetes)",
    default="deployment")

#: An RFC 1035 label: what a Service name must be (the strictest of the names used).
_DNS_LABEL = re.compile(r"[a-z]([-a-z0-9]{0,61}[a-z0-9])?\Z")


def mode(environ: dict[str, str] | None = None) -> str:
    """The mode of ``PROCMGMT_KUBERNETES_MODE``, checked."""
    value = str(MODE_SETTING.read(environ))
    if value not in MODES:
        raise UsageError(f"{MODE_SETTING.env}: expected one of {', '.join(MODES)}, "
                         f"got {value!r}")
    return value


def _ids(spec: ProcessSpec, settings: Settings, user: str) -> tuple[int | None, int | None]:
    """(uid, gid) of ``user`` from the model's credentials or the ids file."""
    creds = credentials_with_ids(spec.credentials, settings.ids)
    account = creds.users.get(user)
    uid = account.uid if account else None
    group = creds.groups.get(account.group) if account and account.group else None
    return uid, group.gid if group else None


class KubernetesBackend(Backend):
    """``kubernetes.yaml``: Deployments and Services, or one Pod; nothing deployed."""

    name = "kubernetes"
    own_settings = (IMAGE_SETTING, MODE_SETTING)
    capabilities = Capabilities(
        prefers=ProcessMode.FOREGROUND,
        dependencies=Support.EMULATED,
        ordering=Ordering.WAITS,
        ordering_detail="init containers wait for each dependency's Service (a Pod: "
                        "the dependent's proxy waits on the loopback address)",
        user_switching=Support.NATIVE,
        privileges=frozenset(),
        tested=Coverage.GENERATED,
        readiness=Support.NATIVE,
        readiness_kinds=SH_READINESS,
        pid_files=PidFiles.DAEMONS,
        deploys=False,
        lifecycle=Lifecycle(default_restart="always", restart_native=frozenset({"always"}),
                            restart_delay=Support.REFUSED, restart_max=Support.REFUSED,
                            default_stop_timeout=float(DEFAULT_GRACE),
                            stop_timeout=Support.NATIVE, liveness=Support.NATIVE),
        notes="an export: kubernetes.yaml for 'kubectl apply -f'; readiness: "
              "readinessProbe (tcpSocket, httpGet, or exec running the shared sh check); "
              "user: runAsUser where the uid is known; every container runs "
              "PROCMGMT_KUBERNETES_IMAGE",
    )

    def translate(self, spec: ProcessSpec, ctx: BuildContext) -> dict[str, Any]:
        """The process's container, its labels, init containers and pod settings;
        the proxy's parameters under ``_proxy`` when it runs through the proxy."""
        settings = ctx.settings
        image = str(IMAGE_SETTING.read())
        in_pod = mode() == "pod"
        check = spec.readiness
        pid_probe = isinstance(check, rd.PidFile) and not check.path
        log_probe = isinstance(check, rd.LogLine)
        waits = self._pod_waits(spec, ctx) if in_pod else {}
        native: dict[str, Any] = {"labels": objects.labels(spec.name, settings.profile)}
        container: dict[str, Any] = {"name": spec.name, "image": image}
        if needs_proxy(spec) or pid_probe or log_probe or waits:
            native[PROXY_KEY] = proxy_native(spec, ctx, write_pid_file=pid_probe,
                                             record_log_offset=log_probe, wait_ready=waits)
        else:
            assert spec.foreground is not None
            container["command"] = [dollars_doubled(w) for w in (spec.foreground,
                                                                 *spec.foreground_args)]
            if spec.directory:
                container["workingDir"] = spec.directory
        env = dict(spec.environment)
        path = spec.path_value()
        if path:
            env["PATH"] = f"{path}:{SYSTEM_PATH}"
        if env:
            container["env"] = [{"name": k, "value": dollars_doubled(v)}
                                for k, v in sorted(env.items())]
        port = objects.check_port(check)
        if port is not None:
            container["ports"] = [{"containerPort": port, "protocol": "TCP"}]
        offset_file = ready.log_offset_file(spec, settings) if log_probe else ""
        probe = objects.probe(check, pid_file=spec.derived_pid_file(settings),
                              offset_file=offset_file)
        if probe is not None:
            container["readinessProbe"] = probe
        elif check is not None:
            ctx.warn(spec, self.name, f"readiness {check.describe()} cannot be probed by "
                     "the kubelet; the container counts as ready once it runs")
        live = spec.liveness
        if isinstance(live, rd.Liveness):
            # The kubelet restarts the container after failureThreshold failures.
            period, each, failures, delay = liveness.timing(live)
            handler = objects.probe(liveness.probed(live), pid_file=None)
            assert handler is not None, "validation allows only probeable kinds"
            container["livenessProbe"] = {
                **{k: v for k, v in handler.items() if k not in (
                    "periodSeconds", "timeoutSeconds", "failureThreshold")},
                "initialDelaySeconds": delay, "periodSeconds": period,
                "timeoutSeconds": each, "failureThreshold": failures}
        user = spec.effective_user(settings)
        if user:
            uid, gid = _ids(spec, settings, user)
            if uid is None:
                ctx.warn(spec, self.name, f"user {user!r} has no uid in the model or the "
                         "ids file: the container runs as the image's user")
            else:
                container["securityContext"] = {"runAsUser": uid,
                                                **({"runAsGroup": gid} if gid is not None
                                                   else {})}
        if spec.stop_signal != "TERM":
            ctx.warn(spec, self.name, f"stop_signal={spec.stop_signal}: the kubelet stops "
                     "a container with the image's STOPSIGNAL (SIGTERM by default)")
        native["container"] = container
        if not in_pod:
            native["initContainers"] = self._init_waits(spec, ctx, image)
        native["restartPolicy"] = "Always"
        if spec.stop_timeout is not None:
            native["terminationGracePeriodSeconds"] = whole_seconds(spec.stop_timeout)
        if port is not None:
            native["service"] = {"port": port}
        return native

    def _init_waits(self, spec: ProcessSpec, ctx: BuildContext,
                    image: str) -> list[dict[str, Any]]:
        """Init containers that wait for each dependency through its Service."""
        waits = []
        for dep in spec.dependencies:
            other = ctx.specs[dep]
            remote = objects.remote_check(other.readiness, dep)
            if remote is None:
                ctx.warn(spec, self.name, f"cannot wait for dependency {dep}: only a TCP or "
                         "HTTP readiness check can be checked from another pod; it may "
                         "start first")
                continue
            waits.append(objects.wait_container(dep, remote, image))
        return waits

    def _pod_waits(self, spec: ProcessSpec, ctx: BuildContext) -> dict[str, Any]:
        """For the Pod: the dependencies the proxy waits for on the loopback address
        (TCP, HTTP and Command checks; a pid file or log of another container is
        out of reach)."""
        waits = ready.dependency_waits(spec, ctx.specs, ctx.settings)
        for dep in spec.dependencies:
            check = ctx.specs[dep].readiness
            if dep in waits and not isinstance(check, (rd.TCP, rd.HTTP, rd.Command)):
                del waits[dep]
            if dep not in waits:
                ctx.warn(spec, self.name, f"cannot wait for dependency {dep} in the Pod "
                         "(it declares no TCP, HTTP or command readiness check); its "
                         "container may start first")
        return waits

    def render(self, native: dict[str, Any], spec: ProcessSpec, ctx: BuildContext) -> list[File]:
        """Nothing per process: the objects go into the generation's document."""
        return []

    def generation_files(self, specs: Sequence[ProcessSpec], ctx: BuildContext) -> list[File]:
        """``kubernetes.yaml``: every process's (overridden) part as objects."""
        profile = ctx.settings.profile
        natives = []
        for spec in specs:
            native = dict(ctx.natives[spec.name])
            proxy = native.pop(PROXY_KEY, None)
            if proxy:
                container = dict(native["container"])
                native["container"] = {
                    "name": container.pop("name"), "image": container.pop("image"),
                    "command": [dollars_doubled(w) for w in inline_argv(proxy)],
                    **container}
            natives.append((spec.name, native))
        documents: list[dict[str, Any]] = []
        if mode() == "pod":
            if natives:
                documents.append(objects.pod(profile, [n for _, n in natives]))
            selector = {objects.PART_OF_LABEL: profile}
        for name, native in natives:
            if mode() != "pod":
                documents.append(objects.deployment(name, native, profile))
                selector = {objects.NAME_LABEL: name, objects.PART_OF_LABEL: profile}
            svc = native.get("service")
            if svc:
                documents.append(objects.service(name, int(svc["port"]), selector, profile))
        header = ("# Generated by procmgmt (-P kubernetes). Apply it with:\n"
                  f"#   kubectl apply -f {DOCUMENT}\n")
        return [File(DOCUMENT, header + yamlout.dump_all(documents))]

    def validate(self, specs: Sequence[ProcessSpec], ctx: BuildContext) -> list[Problem]:
        """Names Kubernetes refuses for its objects, shell checks the exec probes
        cannot express, NUL characters; the mode and (for a Pod) the profile name."""
        in_pod = mode() == "pod"
        if in_pod and not _DNS_LABEL.match(ctx.settings.profile):
            raise UsageError(f"--profile {ctx.settings.profile!r} names the Pod and is not "
                             "a Kubernetes name (lowercase letters, digits and '-', a "
                             "letter first, at most 63 characters)")
        rows: list[tuple[str, str, str]] = []
        for spec in specs:
            rows += liveness.native_problems(spec)
            if not _DNS_LABEL.match(spec.name):
                rows.append((spec.name, "name", f"{spec.name!r} is not a Kubernetes object "
                             "name (lowercase letters, digits and '-', a letter first, at "
                             "most 63 characters): rename the process for -P kubernetes"))
            if ready.checkable(spec.readiness):
                rows += ready.spec_problems(spec)
            words = [spec.foreground or "", *spec.foreground_args, spec.daemon or "",
                     *spec.daemon_args, *spec.environment.values()]
            if any("\0" in w for w in words):
                rows.append((spec.name, "args", "contains a NUL character, which no "
                             "program can receive"))
        return ctx.problems(rows)

    def activator(self, settings: Settings) -> Activator:
        """procmgmt does not talk to a cluster: say how to use the export."""
        raise UsageError("-P kubernetes is an export: write it with 'procmgmt generate "
                         f"-P kubernetes MODEL -o OUT' and apply it with 'kubectl apply -f "
                         f"OUT/{DOCUMENT}'")
