"""Build per target: the processes model evaluated for each host, validated, rendered.

For each target the model is evaluated with that target's settings and the
:class:`~.placement.Placement` of every instance, reduced to the instances
placed there, and built with the ordinary pipeline
(:func:`procmgmt.deploy.build.build`) into a staging store of the
coordinator. Dependencies on instances of other hosts leave the target's
model (its process manager cannot order them) and become edges of the
cross-host graph the transition orders by.

Checked across the network, each a located problem: a dependency on an
instance the distribution places nowhere, and two instances of one host
with the same ``port``.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import json
import multiprocessing
import os
import tarfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from procmgmt.deploy.build import build
from procmgmt.errors import Problem, ValidationError
from procmgmt.manifest import Generation, to_json
from procmgmt.model.loader import Model, load_model
from procmgmt.model.process import Instance, Process
from procmgmt.network.agent import BUNDLE_ENTRIES, BUNDLE_MANIFEST
from procmgmt.network.distribution import Distribution
from procmgmt.network.infrastructure import Infrastructure, Target
from procmgmt.network.placement import Placement, evaluating
from procmgmt.settings import Settings, resolve
from procmgmt.validate import validate

#: A process of the network: (target name, process name).
Node = tuple[str, str]


@dataclass(frozen=True)
class StagedSettings(Settings):
    """A target's settings, with the store on the coordinator (``staging_store``).

    Rendered files never name the store they are in (entries are addressed by
    content), so what is built here is what the target would build itself."""

    staging_store: str = ""

    @property
    def store_dir(self) -> str:
        """The coordinator's staging store for this target."""
        return self.staging_store


@dataclass
class TargetBuild:
    """One target's generation, built on the coordinator."""

    target: Target
    generation: Generation
    #: The bundle to transfer (store entries plus manifest).
    bundle: str


@dataclass
class NetworkBuild:
    """Every target's build plus the cross-host dependency edges."""

    targets: dict[str, TargetBuild] = field(default_factory=dict)
    #: dependent -> dependencies, over every process of the network.
    depends: dict[Node, set[Node]] = field(default_factory=dict)


def target_settings(target: Target, base: Settings, facts: Mapping[str, Any],
                    staging: str) -> StagedSettings:
    """The settings procmgmt on ``target`` runs with, staged on the coordinator.

    ``facts`` is the target's probe (its login user and group: a model that
    decides by the deploying user must see the target's, not the coordinator's)."""
    settings = resolve({"state_dir": target.state_dir,
                        "process_manager": target.process_manager,
                        "profile": target.profile,
                        "force_disable_user_change": target.force_disable_user_change},
                       environ={})
    return StagedSettings(**{**{f.name: getattr(settings, f.name)
                                for f in dataclasses.fields(Settings)},
                             "extra_params": base.extra_params,
                             "model_timeout": base.model_timeout,
                             "calling_user": facts.get("user", settings.calling_user),
                             "calling_group": facts.get("group", settings.calling_group),
                             "staging_store": os.path.join(staging, "store")})


def hosts_view(infra: Infrastructure, dist: Distribution) -> dict[str, dict[str, Any]]:
    """Instance -> properties of its first target (plus ``address`` and ``target``)."""
    view: dict[str, dict[str, Any]] = {}
    for name, targets in dist.placed.items():
        target = infra.targets[targets[0]]
        view[name] = {**target.properties, "address": target.address, "target": target.name}
    return view


@dataclass
class _Part:
    """One target's share of a network build (what a build process sends back)."""

    problems: list[Problem]
    cross: list[tuple[Node, str]]  # (process here, instance it depends on elsewhere)
    placed: list[tuple[str, Node]]  # (instance, process here)
    build: TargetBuild | None = None


def _build_target(model_path: str, tname: str, target: Target, settings: StagedSettings,
                  dist: Distribution, view: dict[str, dict[str, Any]], staging: str) -> _Part:
    """Evaluate, check, validate and build the model for one target."""
    with evaluating(Placement(tname, view)):
        model = load_model(model_path, settings)
    local = [k for k in dist.on(tname) if k in model.instances]
    key_of = {id(inst.process): k for k, inst in model.instances.items()}
    found = _check(model, local, key_of, dist, tname)
    part = _Part(found.problems, [((tname, found.names[k]), dep) for k, dep in found.cross],
                 [(k, (tname, found.names[k])) for k in local])
    sub = _local_model(model, local, key_of)
    try:
        specs = validate(sub, settings)
    except ValidationError as exc:
        part.problems += [dataclasses.replace(p, message=f"on target {tname}: {p.message}")
                          for p in exc.problems]
        return part
    # No render cache: its index lives below the settings' procmgmt dir, which
    # here is the target's path, not the coordinator's (the build would create
    # the target's state dir on the coordinator).
    gen = build(sub, specs, settings, use_cache=False)
    part.build = TargetBuild(target, gen, _bundle(gen, settings, staging))
    return part


def _processes(count: int) -> int:
    """How many processes build ``count`` targets: one per CPU, at most one each."""
    return max(1, min(count, os.cpu_count() or 1))


def _build_all(model_path: str, jobs: list[tuple[str, Target, StagedSettings, str]],
               dist: Distribution, view: dict[str, dict[str, Any]]) -> list[_Part]:
    """Every target's part, in the order of ``jobs``.

    With more than one target and CPU, the targets are built in forked processes
    (the model is evaluated once per target: CPU-bound Python, so threads would
    not help); each writes only its own staging store. A target whose build
    process fails is built again here, so a mistake in the model is reported
    exactly as without the processes."""
    workers = _processes(len(jobs))
    if workers == 1:
        return [_build_target(model_path, n, t, s, dist, view, d) for n, t, s, d in jobs]
    context = multiprocessing.get_context("fork")
    parts: list[_Part | None] = []
    with concurrent.futures.ProcessPoolExecutor(workers, mp_context=context) as pool:
        futures = [pool.submit(_build_target, model_path, n, t, s, dist, view, d)
                   for n, t, s, d in jobs]
        for future in futures:
            try:
                parts.append(future.result())
            except Exception:  # built again below, where it raises as itself
                parts.append(None)
    return [part if part is not None else _build_target(model_path, n, t, s, dist, view, d)
            for part, (n, t, s, d) in zip(parts, jobs, strict=True)]


def build_network(model_path: str, infra: Infrastructure, dist: Distribution,
                  base: Settings, facts: Mapping[str, Mapping[str, Any]],
                  staging: str) -> NetworkBuild:
    """Build every target that has instances (or had: an empty model for the others)."""
    result = NetworkBuild()
    view = hosts_view(infra, dist)
    jobs = [(tname, target, target_settings(target, base, facts.get(tname, {}),
                                            os.path.join(staging, tname)),
             os.path.join(staging, tname)) for tname, target in infra.targets.items()]
    problems: list[Problem] = []
    placed_procs: dict[str, list[Node]] = {}
    cross: list[tuple[Node, str]] = []
    for (tname, _, _, _), part in zip(jobs, _build_all(model_path, jobs, dist, view),
                                      strict=True):
        problems += part.problems
        cross += part.cross
        if part.build is None:
            continue
        for key, node in part.placed:
            placed_procs.setdefault(key, []).append(node)
        for p in part.build.generation.processes:
            result.depends[(tname, p.name)] = {(tname, d) for d in p.dependencies}
        result.targets[tname] = part.build
    if problems:
        raise ValidationError(problems)
    for node, dep_key in cross:
        result.depends.setdefault(node, set()).update(placed_procs.get(dep_key, []))
    return result


@dataclass
class _Found:
    problems: list[Problem]
    cross: list[tuple[str, str]]  # (instance, instance it depends on elsewhere)
    names: dict[str, str]  # instance -> process name


def _check(model: Model, local: list[str], key_of: dict[int, str], dist: Distribution,
           tname: str) -> _Found:
    found = _Found([], [], {})
    ports: dict[int, str] = {}
    for key in local:
        inst = model.instances[key]
        found.names[key] = str(inst.process.effective_name or key)
        file, line = inst.origin if inst.origin[0] else (model.file, None)
        for dep in inst.process.dependencies if isinstance(inst.process.dependencies,
                                                          (list, tuple)) else ():
            dkey = key_of.get(id(dep))
            if dkey is None or dkey in local:
                continue  # not an instance at all: the model's own validation says so
            if dkey not in dist.placed:
                found.problems.append(Problem(
                    f"depends on instance {dkey!r}, which the distribution places on no "
                    "target", key, "dependencies", file, line))
            else:
                found.cross.append((key, dkey))
        port = inst.get("port")
        if isinstance(port, int) and not isinstance(port, bool):
            if port in ports:
                found.problems.append(Problem(
                    f"port {port} is also used by {ports[port]!r} on target {tname}", key,
                    "port", file, line))
            else:
                ports[port] = key
    return found


def _local_model(model: Model, local: list[str], key_of: dict[int, str]) -> Model:
    """The instances of one target, their dependencies on other hosts removed."""
    local_ids = {id(model.instances[k].process) for k in local}
    done: dict[int, Process] = {}

    def rebuilt(proc: Process) -> Process:
        if id(proc) not in done:
            deps = proc.dependencies if isinstance(proc.dependencies, (list, tuple)) else []
            done[id(proc)] = dataclasses.replace(
                proc, dependencies=[rebuilt(d) if id(d) in local_ids else d
                                    for d in deps
                                    if id(d) in local_ids or key_of.get(id(d)) is None])
        return done[id(proc)]

    instances: dict[str, Instance] = {}
    for key in local:
        old = model.instances[key]
        inst = Instance(rebuilt(old.process),
                        requires_unique_ids_for=old.requires_unique_ids_for, **old.metadata)
        inst.origin = old.origin
        instances[key] = inst
    return Model(file=model.file, instances=instances)


def _bundle(gen: Generation, settings: StagedSettings, staging: str) -> str:
    """A tar of the generation's store entries and its manifest (paths as entry names)."""
    data = to_json(gen)
    entries = []
    for proc in data["processes"]:
        entries.append(proc["path"])
        proc["path"] = os.path.basename(proc["path"])
    if data.get("extras"):
        entries.append(data["extras"])
        data["extras"] = os.path.basename(data["extras"])
    path = os.path.join(staging, f"{settings.profile}-{os.path.basename(gen.path)}.tar")
    os.makedirs(staging, exist_ok=True)
    tmp = path + ".tmp"
    with tarfile.open(tmp, "w") as tar:
        for entry in entries:
            tar.add(entry, arcname=os.path.join(BUNDLE_ENTRIES, os.path.basename(entry)))
        manifest = os.path.join(staging, f".{os.path.basename(gen.path)}.json")
        with open(manifest, "w") as f:
            json.dump(data, f)
        tar.add(manifest, arcname=BUNDLE_MANIFEST)
        os.unlink(manifest)
    os.replace(tmp, path)
    return path
