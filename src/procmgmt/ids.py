"""The ID assigner: unique ports, UIDs, GIDs or any other numeric pool per instance.

Instances that need a unique number declare it,
``Instance(proc, requires_unique_ids_for=["webapp_ports", "uids"])``, and
read it back from ``settings.ids["webapp_ports"]["webapp1"]`` (or
:func:`lookup`, which reads a missing entry as 0). ``procmgmt id-assign``
evaluates the model, hands out an ID from each required resource to every
instance that has none yet and writes an ids file that later builds load
(:func:`load_ids`).

Files (JSON, written with sorted keys and an indent so they diff well):

* resources (``--id-resources``)::

      {"webapp_ports": {"min": 5000, "max": 6000, "step": 1, "scope": "global"},
       "uids": {"min": 2000, "max": 3000}}

* ids (``--ids``, the output)::

      {"ids": {"webapp_ports": {"webapp1": 5000}},
       "last_assignments": {"webapp_ports": 5000}}

The algorithm is dydisnix's (nix-processmgmt §4.2): keep every assignment
that is still valid, so an unchanged instance keeps its port and is not
redeployed; drop stale ones; give each unassigned instance, in sorted name
order, the next free slot after the resource's last assignment. Continuing
after the *last* assignment instead of taking the lowest free ID is
deliberate: an ID freed by a removed instance is not handed to a new one
straight away (round-robin), so a client that still talks to the old port
does not silently reach a different service.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from procmgmt import fsutil
from procmgmt.errors import (
    IdRequirementError,
    IdResourcesError,
    IdsDepletedError,
    IdsFileError,
    IdsMissingError,
    UserError,
)
from procmgmt.model.credentials import Credentials
from procmgmt.settings import Settings

#: What a model reads for an ID that has not been assigned yet.
PLACEHOLDER = 0
#: Resources whose IDs the credentials code uses as uid / gid of a same-named user / group.
UIDS = "uids"
GIDS = "gids"
SCOPES = ("global", "machine")
_RESOURCE_KEYS = ("min", "max", "step", "scope")
_IDS_KEYS = ("ids", "last_assignments")

Ids = Mapping[str, Mapping[str, int]]


# --- errors ------------------------------------------------------------------------

# --- resources ---------------------------------------------------------------------

@dataclass(frozen=True)
class Resource:
    """One pool of IDs: the slots ``min, min + step, ...`` up to ``max``.

    ``scope`` is ``"global"`` (one pool shared by every machine) or
    ``"machine"`` (one pool per machine). procmgmt deploys to a single
    machine, where the two are the same pool; the scope is validated and
    kept so that a resources file written for a distributed deployment
    (Disnix) is accepted unchanged.
    """

    name: str
    min: int
    max: int
    step: int = 1
    scope: str = "global"
    #: File the resource was read from, for error messages.
    source: str | None = field(default=None, compare=False)

    @property
    def slots(self) -> int:
        """How many IDs the pool holds."""
        return (self.max - self.min) // self.step + 1

    def describe(self) -> str:
        """``5000-6000`` or ``5000-6000 step 10``."""
        text = f"{self.min}-{self.max}"
        return text if self.step == 1 else f"{text} step {self.step}"

    def problem_with(self, value: int) -> str | None:
        """Why ``value`` is not a slot of this pool, or None if it is one."""
        if not self.min <= value <= self.max:
            return f"outside the range {self.min}-{self.max}"
        if (value - self.min) % self.step:
            return f"not on a step of {self.step} from {self.min}"
        return None

    def next_after(self, last: int | None) -> int:
        """The slot after ``last`` (a valid slot or None), wrapping to ``min`` after ``max``."""
        if last is None or last + self.step > self.max:
            return self.min
        return last + self.step


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def parse_resources(data: Any, source: str) -> dict[str, Resource]:
    """Resources from decoded JSON; every problem is reported at once, naming ``source``."""
    if not isinstance(data, dict):
        raise IdResourcesError(
            f"{source}: expected a JSON object of resource name -> "
            '{"min": ..., "max": ...}, got ' + type(data).__name__)
    problems: list[str] = []
    resources: dict[str, Resource] = {}
    for name in sorted(data):
        spec = data[name]
        where = f"{source}: resource {name!r}"
        if not name:
            problems.append(f"{source}: a resource name must not be empty")
            continue
        if not isinstance(spec, dict):
            problems.append(f"{where}: expected an object with min and max, "
                            f"got {type(spec).__name__}")
            continue
        bad = False
        unknown = sorted(set(spec) - set(_RESOURCE_KEYS))
        if unknown:
            problems.append(f"{where}: unknown key{'s' if len(unknown) > 1 else ''} "
                            f"{', '.join(map(repr, unknown))} (allowed: "
                            f"{', '.join(_RESOURCE_KEYS)})")
            bad = True
        for key in ("min", "max"):
            if key not in spec:
                problems.append(f"{where}: missing {key!r}")
                bad = True
            elif not _is_int(spec[key]):
                problems.append(f"{where}: {key!r} must be an integer, got {spec[key]!r}")
                bad = True
        step = spec.get("step", 1)
        if not _is_int(step):
            problems.append(f"{where}: 'step' must be an integer, got {step!r}")
            bad = True
        elif step < 1:
            problems.append(f"{where}: 'step' must be at least 1, got {step}")
            bad = True
        scope = spec.get("scope", "global")
        if scope not in SCOPES:
            problems.append(f"{where}: 'scope' must be one of {', '.join(map(repr, SCOPES))}, "
                            f"got {scope!r}")
            bad = True
        if bad:
            continue
        lo, hi = spec["min"], spec["max"]
        if lo < 1:
            problems.append(f"{where}: 'min' must be at least 1, got {lo} "
                            f"({PLACEHOLDER} is what a model reads before the first assignment)")
            continue
        if lo > hi:
            problems.append(f"{where}: 'min' ({lo}) is greater than 'max' ({hi})")
            continue
        resources[name] = Resource(name, lo, hi, step, scope, source)
    if problems:
        raise IdResourcesError("\n".join(problems))
    return resources


def _read_json(path: str, error: type[UserError], what: str) -> Any:
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        raise error(f"{path}: no such {what}") from None
    except IsADirectoryError:
        raise error(f"{path}: is a directory, expected a JSON {what}") from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise error(f"{path}: cannot read the {what}: {reason}") from None
    if not text.strip():
        raise error(f"{path}: the {what} is empty (if the output of 'procmgmt id-assign' was "
                    "redirected onto the file it reads, the shell emptied it first: "
                    "use --output-file instead)")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise error(f"{path}:{exc.lineno}:{exc.colno}: the {what} is not valid JSON: "
                    f"{exc.msg}") from None


def load_resources(path: str) -> dict[str, Resource]:
    """Read and validate an ID resources file."""
    return parse_resources(_read_json(path, IdResourcesError, "ID resources file"), path)


# --- ids file ----------------------------------------------------------------------

@dataclass(frozen=True)
class IdAssignments:
    """The content of an ids file: resource -> instance -> ID, and the last ID given out."""

    ids: dict[str, dict[str, int]] = field(default_factory=dict)
    last_assignments: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> str:
        """The ids file text: sorted keys, indent 2, final newline (stable, diffable)."""
        doc = {"ids": self.ids, "last_assignments": self.last_assignments}
        return json.dumps(doc, indent=2, sort_keys=True) + "\n"


def parse_ids(data: Any, source: str) -> IdAssignments:
    """An ids document from decoded JSON; every problem is reported at once."""
    if not isinstance(data, dict):
        raise IdsFileError(f'{source}: expected a JSON object {{"ids": ..., '
                           f'"last_assignments": ...}}, got {type(data).__name__}')
    problems: list[str] = []
    unknown = sorted(set(data) - set(_IDS_KEYS))
    if unknown:
        problems.append(f"{source}: unknown key{'s' if len(unknown) > 1 else ''} "
                        f"{', '.join(map(repr, unknown))} (allowed: {', '.join(_IDS_KEYS)})")
    ids: dict[str, dict[str, int]] = {}
    raw_ids = data.get("ids", {})
    if not isinstance(raw_ids, dict):
        problems.append(f"{source}: 'ids' must be an object of resource -> instance -> ID, "
                        f"got {type(raw_ids).__name__}")
        raw_ids = {}
    for resource, per_instance in sorted(raw_ids.items()):
        if not isinstance(per_instance, dict):
            problems.append(f"{source}: ids.{resource}: expected an object of instance -> ID, "
                            f"got {type(per_instance).__name__}")
            continue
        ids[resource] = {}
        for instance, value in sorted(per_instance.items()):
            if not _is_int(value):
                problems.append(f"{source}: ids.{resource}.{instance}: expected an integer, "
                                f"got {value!r}")
            else:
                ids[resource][instance] = value
    last: dict[str, int] = {}
    raw_last = data.get("last_assignments", {})
    if not isinstance(raw_last, dict):
        problems.append(f"{source}: 'last_assignments' must be an object of resource -> ID, "
                        f"got {type(raw_last).__name__}")
        raw_last = {}
    for resource, value in sorted(raw_last.items()):
        if not _is_int(value):
            problems.append(f"{source}: last_assignments.{resource}: expected an integer, "
                            f"got {value!r}")
        else:
            last[resource] = value
    if problems:
        raise IdsFileError("\n".join(problems))
    return IdAssignments(ids, last)


def read_ids(path: str) -> IdAssignments:
    """Read and validate an ids file (assignments and last assignments)."""
    return parse_ids(_read_json(path, IdsFileError, "ids file"), path)


def load_ids(path: str) -> dict[str, dict[str, int]]:
    """The assignments of an ids file, ready for ``Settings.ids``.

    This is what a build loads: ``dataclasses.replace(settings, ids=load_ids(path))``
    (see :func:`with_ids`).
    """
    return read_ids(path).ids


def with_ids(settings: Settings, path: str | None) -> Settings:
    """``settings`` with the IDs of the ids file at ``path`` (unchanged for None)."""
    if path is None:
        return settings
    return dataclasses.replace(settings, ids=load_ids(path))


def lookup(source: Settings | Ids, resource: str, instance: str,
           default: int = PLACEHOLDER) -> int:
    """The ID of ``instance`` in ``resource``, or ``default`` when none is assigned yet.

    Models use it so they evaluate before the first ``procmgmt id-assign``::

        port = lookup(settings, "webapp_ports", "webapp1")
    """
    ids = source.ids if isinstance(source, Settings) else source
    per_instance = ids.get(resource)
    if per_instance is None:
        return default
    value = per_instance.get(instance)
    return default if value is None else value


_V = TypeVar("_V")


class _Defaulting(Mapping[str, _V]):
    """A read-only mapping where a missing key reads as ``missing()``; iteration,
    ``len`` and ``in`` only see the real entries."""

    def __init__(self, data: Mapping[str, _V], missing: Callable[[], _V]) -> None:
        self._data = dict(data)
        self._missing = missing

    def __getitem__(self, key: str) -> _V:
        return self._data[key] if key in self._data else self._missing()

    def __contains__(self, key: object) -> bool:
        return key in self._data

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def get(self, key: str, default: Any = None) -> Any:
        return self._data.get(key, default)


def _placeholder_instances(data: Mapping[str, int]) -> _Defaulting[int]:
    """instance -> ID where a missing instance reads as the placeholder 0."""
    return _Defaulting(data, lambda: PLACEHOLDER)


class PlaceholderIds(_Defaulting[Mapping[str, int]]):
    """Assignments in which every missing resource or instance reads as 0.

    The assigner evaluates the model with these ``settings.ids`` so that a
    model written as ``settings.ids["webapp_ports"]["webapp3"]`` evaluates
    before webapp3 has a port, exactly like ``ids.webappPorts.webapp3 or 0``
    in the original. Iteration and ``in`` only see the real assignments.
    """

    def __init__(self, ids: Ids) -> None:
        super().__init__({r: _placeholder_instances(v) for r, v in ids.items()},
                         lambda: _placeholder_instances({}))


# --- the algorithm -----------------------------------------------------------------

@dataclass(frozen=True)
class Dropped:
    """An assignment that was removed, and why."""

    resource: str
    instance: str
    id: int
    reason: str


@dataclass(frozen=True)
class Assigned:
    """A new assignment."""

    resource: str
    instance: str
    id: int


@dataclass(frozen=True)
class AssignResult:
    """The new ids document and what changed relative to the previous one."""

    assignments: IdAssignments
    assigned: tuple[Assigned, ...] = ()
    dropped: tuple[Dropped, ...] = ()

    def describe(self) -> list[str]:
        """One line per change, for the user (stderr)."""
        lines = [f"dropped {d.resource}.{d.instance} = {d.id}: {d.reason}"
                 for d in self.dropped]
        lines += [f"assigned {a.resource}.{a.instance} = {a.id}" for a in self.assigned]
        return lines


def requirements_of(instances: Mapping[str, Any]) -> dict[str, tuple[str, ...]]:
    """instance name -> resources it requires IDs from (``requires_unique_ids_for``)."""
    return {name: tuple(getattr(inst, "requires_unique_ids_for", ()))
            for name, inst in instances.items()}


def _check_requirements(requirements: Mapping[str, Iterable[str]],
                        resources: Mapping[str, Resource], model_file: str | None) -> None:
    problems = []
    defined = ", ".join(sorted(resources)) or "none"
    source = next((r.source for r in resources.values() if r.source),
                  "the ID resources file")
    where = f"{model_file}: " if model_file else ""
    for instance in sorted(requirements):
        wanted = list(requirements[instance])
        if len(wanted) > 1 and all(isinstance(r, str) and len(r) == 1 for r in wanted):
            # Instance(..., requires_unique_ids_for="uids") iterates the string.
            problems.append(f"{where}instance {instance!r}: requires_unique_ids_for must be "
                            f"a list of resource names, e.g. [{''.join(wanted)!r}], "
                            "not a string")
            continue
        for resource in wanted:
            if not isinstance(resource, str):
                problems.append(f"{where}instance {instance!r}: requires_unique_ids_for "
                                f"entries must be resource names, got {resource!r}")
            elif resource not in resources:
                problems.append(f"{where}instance {instance!r}: requires IDs from "
                                f"{resource!r}, which {source} does not define "
                                f"(defined: {defined})")
    if problems:
        raise IdRequirementError("\n".join(problems))


def assign(requirements: Mapping[str, Iterable[str]], resources: Mapping[str, Resource],
           previous: IdAssignments | None = None, *, model_file: str | None = None,
           ) -> AssignResult:
    """Assign IDs (pure: no file is read or written).

    ``requirements`` maps each instance name to the resources it needs IDs
    from. Steps, per nix-processmgmt §4.2:

    1. Drop stale assignments: the resource is gone, the instance is gone
       or no longer requires the resource, or the ID is no longer a slot of
       the pool (outside [min, max] or off the step grid). If two instances
       hold the same ID (a hand-edited file), the first in sorted order
       keeps it. A last assignment is kept only while it is a slot of its
       pool (otherwise the pool restarts at ``min``).
    2. Keep every other assignment unchanged.
    3. Per resource (sorted), per instance without an ID (sorted): take
       the next slot after the last assignment (``min`` if none), wrapping
       to ``min`` after ``max`` and skipping IDs in use; all slots in use is
       :class:`IdsDepletedError`.

    The result depends only on the inputs (sorted iteration), and assigning
    again with its own output changes nothing.
    """
    previous = previous or IdAssignments()
    _check_requirements(requirements, resources, model_file)
    required = {inst: set(rs) for inst, rs in requirements.items()}

    dropped: list[Dropped] = []
    ids: dict[str, dict[str, int]] = {name: {} for name in resources}
    for resource_name, per_instance in sorted(previous.ids.items()):
        resource = resources.get(resource_name)
        used: set[int] = set()
        for instance, value in sorted(per_instance.items()):
            reason = None
            if resource is None:
                reason = "the resource is no longer defined"
            elif instance not in required:
                reason = "the instance is no longer in the model"
            elif resource_name not in required[instance]:
                reason = f"the instance no longer requires {resource_name!r}"
            else:
                problem = resource.problem_with(value)
                if problem:
                    reason = f"{problem} of {resource_name!r}"
                elif value in used:
                    holder = next(i for i, v in ids[resource_name].items() if v == value)
                    reason = f"the ID is also assigned to {holder!r}"
            if reason:
                dropped.append(Dropped(resource_name, instance, value, reason))
            else:
                ids[resource_name][instance] = value
                used.add(value)

    last: dict[str, int] = {
        name: value for name, value in previous.last_assignments.items()
        if name in resources and resources[name].problem_with(value) is None
    }

    assigned: list[Assigned] = []
    for resource_name, resource in sorted(resources.items()):
        current = ids[resource_name]
        used = set(current.values())
        for instance in sorted(required):
            if resource_name not in required[instance] or instance in current:
                continue
            if len(used) >= resource.slots:
                raise IdsDepletedError(
                    f"resource {resource_name!r}: the IDs are depleted: all {resource.slots} "
                    f"of {resource.describe()} are in use, none is left for instance "
                    f"{instance!r}; widen the range in "
                    f"{resource.source or 'the ID resources file'}")
            candidate = resource.next_after(last.get(resource_name))
            while candidate in used:
                candidate = resource.next_after(candidate)
            current[instance] = candidate
            used.add(candidate)
            last[resource_name] = candidate
            assigned.append(Assigned(resource_name, instance, candidate))

    return AssignResult(IdAssignments(ids, last), tuple(assigned), tuple(dropped))


def assign_for_model(model_path: str, resources_path: str, ids_path: str | None,
                     settings: Settings) -> AssignResult:
    """Evaluate the model with the current IDs (missing ones read as 0) and assign.

    This is ``procmgmt id-assign``: read the resources and the previous ids
    file, evaluate the model once with :class:`PlaceholderIds`, collect
    ``requires_unique_ids_for`` from its instances and run :func:`assign`.
    """
    from procmgmt.model.loader import load_model

    resources = load_resources(resources_path)
    previous = read_ids(ids_path) if ids_path is not None else IdAssignments()
    eval_settings = dataclasses.replace(settings, ids=PlaceholderIds(previous.ids))
    model = load_model(model_path, eval_settings)
    return assign(requirements_of(model.instances), resources, previous,
                  model_file=model.file)


def missing_assignments(instances: Mapping[str, Any], ids: Ids) -> list[tuple[str, str]]:
    """(instance, resource) pairs an instance requires but ``ids`` has no ID for."""
    missing = []
    for instance, wanted in sorted(requirements_of(instances).items()):
        for resource in wanted:
            if instance not in ids.get(resource, {}):
                missing.append((instance, resource))
    return missing


def check_assigned(instances: Mapping[str, Any], ids: Ids, ids_source: str | None) -> None:
    """Raise :class:`IdsMissingError` when a required ID is not assigned.

    A build calls it after evaluating the model, so that a forgotten
    ``procmgmt id-assign`` is reported as such instead of as port 0.
    """
    missing = missing_assignments(instances, ids)
    if not missing:
        return
    source = ids_source or "the ids (no --ids file was given)"
    lines = [f"instance {inst!r} requires an ID from {res!r}, but {source} has none"
             for inst, res in missing]
    lines.append("run 'procmgmt id-assign --id-resources RESOURCES --ids IDS "
                 "--output-file IDS MODEL' first")
    raise IdsMissingError("\n".join(lines))


# --- credentials -------------------------------------------------------------------

def uid_for(user: str, ids: Ids) -> int | None:
    """The uid assigned to the instance named ``user`` in the ``uids`` resource, if any.

    As in nix-processmgmt, a user gets an assigned uid when its name is an
    instance name that required ``uids`` (constructors name the user after
    the instance). An explicit ``User(uid=...)`` takes precedence: see
    :func:`credentials_with_ids`.
    """
    return ids.get(UIDS, {}).get(user)


def gid_for(group: str, ids: Ids) -> int | None:
    """The gid assigned to the instance named ``group`` in the ``gids`` resource, if any."""
    return ids.get(GIDS, {}).get(group)


def credentials_with_ids(credentials: Credentials, ids: Ids) -> Credentials:
    """``credentials`` with assigned uids/gids filled in where none is given explicitly."""
    groups = {
        name: g if g.gid is not None or gid_for(name, ids) is None
        else dataclasses.replace(g, gid=gid_for(name, ids))
        for name, g in credentials.groups.items()
    }
    users = {
        name: u if u.uid is not None or uid_for(name, ids) is None
        else dataclasses.replace(u, uid=uid_for(name, ids))
        for name, u in credentials.users.items()
    }
    return Credentials(groups=groups, users=users)


# --- writing -----------------------------------------------------------------------

def write_atomic(path: str, text: str) -> None:
    """Write ``text`` to ``path`` so readers see the old or the new file, never half of one.

    An existing file keeps its mode; a new one is 0644 whatever the umask (it is
    read by the model, possibly as root)."""
    target = os.path.abspath(path)
    try:
        mode = os.stat(target).st_mode & 0o7777
    except FileNotFoundError:
        mode = fsutil.FILE
    except OSError as exc:
        raise IdsFileError(f"{path}: cannot write: {exc.strerror or exc}") from None
    try:
        fsutil.write_atomic(target, text, mode, fsync=True)
    except OSError as exc:
        raise IdsFileError(f"{path}: cannot write: {exc.strerror or exc}") from None
