"""Kubernetes objects from the translated processes: probes, waits, documents.

Field names and rules are Kubernetes' API reference (core/v1 Container,
Probe, Pod, Service; apps/v1 Deployment:
https://kubernetes.io/docs/reference/kubernetes-api/workload-resources/pod-v1/,
https://kubernetes.io/docs/reference/kubernetes-api/workload-resources/deployment-v1/,
https://kubernetes.io/docs/reference/kubernetes-api/service-resources/service-v1/).
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Mapping, Sequence
from typing import Any

from procmgmt import readiness as rd
from procmgmt.backends.shared import ready
from procmgmt.backends.shared.exports import (
    dollars_doubled,
    probe_script,
    probe_timing,
)

#: Hosts a readiness check names for "this process itself": the kubelet probes
#: the pod's own address instead (a probe's ``host`` would be the node's).
LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1", "0.0.0.0", ""})
#: The one HTTP status a native ``httpGet`` probe checks exactly enough: it
#: accepts every status from 200 to 399.
HTTP_OK = 200
#: Label keys (Kubernetes' recommended labels).
NAME_LABEL = "app.kubernetes.io/name"
PART_OF_LABEL = "app.kubernetes.io/part-of"
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"


def check_port(check: Any) -> int | None:
    """The TCP port a TCP or HTTP check connects to (what a Service exposes)."""
    if isinstance(check, rd.TCP):
        return check.port
    if isinstance(check, rd.HTTP):
        return check.port()
    return None


def _url_parts(check: rd.HTTP) -> tuple[str, str, str]:
    """(host, path with query, scheme) of ``check``'s URL."""
    parts = urllib.parse.urlsplit(check.url)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return parts.hostname or "", path, parts.scheme or "http"


def probe(check: Any, *, pid_file: str | None, offset_file: str = "") -> dict[str, Any] | None:
    """A ``readinessProbe`` for ``check``: ``tcpSocket``, ``httpGet`` (status 200
    only: the kubelet accepts 200-399), else ``exec`` running the shared sh check
    once. None for a declaration that nothing can probe (Notify) or none."""
    if not ready.checkable(check):
        return None
    period, each, failures = probe_timing(check)
    handler: dict[str, Any]
    if isinstance(check, rd.TCP):
        handler = {"tcpSocket": {"port": check.port}}
        if check.host not in LOOPBACK:
            handler["tcpSocket"]["host"] = check.host
    elif isinstance(check, rd.HTTP) and check.status == HTTP_OK:
        host, path, scheme = _url_parts(check)
        get: dict[str, Any] = {"path": path, "port": check.port(), "scheme": scheme.upper()}
        if host not in LOOPBACK:
            get["host"] = host
        if check.host_header:
            get["httpHeaders"] = [{"name": "Host", "value": check.host_header}]
        handler = {"httpGet": get}
    else:
        script = probe_script(check, pid_file=pid_file, offset_file=offset_file)
        handler = {"exec": {"command": ["/bin/sh", "-c", script]}}
    return {**handler, "periodSeconds": period, "timeoutSeconds": each,
            "failureThreshold": failures}


def remote_check(check: Any, host: str) -> rd.Readiness | None:
    """``check`` aimed at ``host`` (a dependency's Service) instead of the loopback
    address: TCP and HTTP checks only (None for any other: a pid file or a log
    of another pod cannot be read)."""
    if isinstance(check, rd.TCP):
        return rd.TCP(interval=check.interval, timeout=check.timeout, port=check.port,
                      host=host)
    if isinstance(check, rd.HTTP):
        parts = urllib.parse.urlsplit(check.url)
        netloc = f"{host}:{check.port()}"
        url = urllib.parse.urlunsplit((parts.scheme or "http", netloc, parts.path,
                                       parts.query, ""))
        return rd.HTTP(interval=check.interval, timeout=check.timeout, url=url,
                       status=check.status, host_header=check.host_header)
    return None


def wait_container(dependency: str, check: rd.Readiness, image: str) -> dict[str, Any]:
    """An init container that waits until ``dependency`` passes ``check`` through
    its Service (the shared sh wait: every interval, until the timeout; then the
    init container fails and the kubelet starts it again, backing off)."""
    script = ready.library([check]) + ready.wait_call(dependency, check, pid_file=None) + "\n"
    return {"name": f"wait-for-{dependency}", "image": image,
            "command": ["/bin/sh", "-c", dollars_doubled(script), f"wait-for-{dependency}"]}


def labels(name: str | None, profile: str) -> dict[str, str]:
    """The labels of an object: its process (none for a generation's Pod), the
    profile it is part of, and who wrote it."""
    found = {NAME_LABEL: name} if name else {}
    return {**found, PART_OF_LABEL: profile, MANAGED_BY_LABEL: "procmgmt"}


def service(name: str, port: int, selector: Mapping[str, str],
            profile: str) -> dict[str, Any]:
    """A ClusterIP Service named after the process: dependents reach it by that name."""
    return {
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": name, "labels": labels(name, profile)},
        "spec": {"selector": dict(selector),
                 "ports": [{"name": "tcp", "port": port, "targetPort": port,
                            "protocol": "TCP"}]},
    }


def pod_spec(containers: Sequence[Mapping[str, Any]], *, init: Sequence[Mapping[str, Any]],
             grace: int | None, restart: str) -> dict[str, Any]:
    """A PodSpec; ``grace`` None keeps Kubernetes' default (30 s)."""
    spec: dict[str, Any] = {"restartPolicy": restart}
    if grace is not None:
        spec["terminationGracePeriodSeconds"] = grace
    if init:
        spec["initContainers"] = [dict(c) for c in init]
    spec["containers"] = [dict(c) for c in containers]
    return spec


def deployment(name: str, native: Mapping[str, Any], profile: str) -> dict[str, Any]:
    """One process's Deployment (one replica: a process of the model is one process)."""
    own = dict(native.get("labels") or labels(name, profile))
    selector = {NAME_LABEL: own.get(NAME_LABEL, name), PART_OF_LABEL: profile}
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "labels": own},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": selector},
            "template": {
                "metadata": {"labels": own},
                "spec": pod_spec([native["container"]], init=native.get("initContainers") or [],
                                 grace=native.get("terminationGracePeriodSeconds"),
                                 restart=native.get("restartPolicy", "Always")),
            },
        },
    }


def pod(profile: str, natives: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The whole generation as one Pod: a container per process. The Pod's grace
    period is the longest any process asks for."""
    graces = [n["terminationGracePeriodSeconds"] for n in natives
              if n.get("terminationGracePeriodSeconds") is not None]
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": profile, "labels": labels(None, profile)},
        "spec": pod_spec([n["container"] for n in natives], init=[],
                         grace=max(graces) if graces else None, restart="Always"),
    }
