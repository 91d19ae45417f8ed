"""The network transition: every host from one coordinator generation to the next.

Disnix's sequence, with procmgmt's single-host switch as each host's step:

1. connect to every target (an unreachable one: stop, nothing changed);
2. probe and lock every target in one round (procmgmt installed where it is
   missing; one that cannot be probed or locked: the others are released,
   nothing changed);
3. build per target (:mod:`.build`) and show the plan per host;
4. transfer each target's bundle (received by the host's first step);
5. stop obsolete processes in waves, dependents first, across hosts;
6. start new processes in waves, dependencies first, across hosts (each
   host of a wave in parallel), every host ending on exactly its new
   generation, its lock released with its last step;
7. record a coordinator generation naming each target's generation.

A failure (or a first Ctrl-C) in 5-6 moves every host back to where it was
(the same waves, the other way round); the locks are released in every case.
"""

from __future__ import annotations

import os
import re
import socket
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TextIO

from procmgmt.errors import DeployError, InterruptError, UsageError
from procmgmt.model.loader import load_model
from procmgmt.network.agent import LOCKED_BY
from procmgmt.network.build import NetworkBuild, build_network
from procmgmt.network.distribution import load_distribution
from procmgmt.network.generations import CoordinatorGeneration, NetworkProfile, Placed
from procmgmt.network.infrastructure import Local, Target, load_infrastructure
from procmgmt.network.placement import Placement, evaluating
from procmgmt.network.reach import Hosts, Result
from procmgmt.network.remote import agent, agent_command, install, lacks_procmgmt
from procmgmt.network.waves import HostState, Node, changes, start_waves, stop_waves
from procmgmt.pids import pid_alive
from procmgmt.settings import Settings


@dataclass
class Goal:
    """Where one host is to end: a generation path there (None: nothing deployed)."""

    path: str | None
    state: HostState
    #: A bundle to transfer first (a freshly built generation); the path is then
    #: known only once the host has received it.
    bundle: str | None = None


#: Given the connected hosts and their probes, each target's goal (and the build,
#: when the goals come from a model).
GoalMaker = Callable[[Hosts, Mapping[str, Any]], tuple[dict[str, Goal], NetworkBuild | None]]


@dataclass
class Outcome:
    """What a transition did (or, for a dry run, would do)."""

    number: int | None = None
    plan: dict[str, list[str]] = field(default_factory=dict)


def _state(info: Mapping[str, Any] | None) -> HostState:
    if not info:
        return HostState(None)
    return HostState(info["backend"], {p["name"]: p["hash"] for p in info["processes"]})


def _local_edges(host: str, info: Mapping[str, Any] | None) -> dict[Node, set[Node]]:
    """The dependencies within one host's generation (as its probe reports it)."""
    return {(host, p["name"]): {(host, d) for d in p["dependencies"]}
            for p in (info or {}).get("processes", [])}


def _merge(*maps: Mapping[Node, set[Node]]) -> dict[Node, set[Node]]:
    out: dict[Node, set[Node]] = {}
    for m in maps:
        for node, deps in m.items():
            out.setdefault(node, set()).update(deps)
    return out


def _failures(results: Mapping[str, dict[str, Any] | Result]) -> dict[str, str]:
    return {h: r.reason() for h, r in results.items() if isinstance(r, Result)}


def _fail_text(failed: Mapping[str, str]) -> str:
    return "; ".join(f"{h}: {why.strip()}" for h, why in sorted(failed.items()))


def _gone_here(holder: str, profile_dir: str) -> bool:
    """A token (``host:pid:nonce:profile dir``) of a coordinator run of this machine
    and profile whose process is gone."""
    parts = holder.split(":", 3)
    if len(parts) != 4 or not parts[1].isdigit():
        return False
    host, pid, _, where = parts
    return host == socket.gethostname() and where == profile_dir and not pid_alive(int(pid))


class Network:
    """Network deployments of one coordinator profile."""

    def __init__(self, settings: Settings, out: TextIO) -> None:
        self.settings = settings
        self.out = out
        self.profile = NetworkProfile(settings)
        #: Take over a network lock whoever holds it (``--break-lock``).
        self.break_lock = False
        #: Per target, the generation number its last step recorded there.
        self._numbers: dict[str, int | None] = {}
        #: The goals of the transition under way (paths filled in as hosts receive).
        self._goals: Mapping[str, Goal] = {}
        #: Targets whose last step released the lock.
        self._unlocked: set[str] = set()
        #: Where a bundle goes on an SSH target (relative: the login user's home); a
        #: local target reads it where it was built.
        self._remote_bundle = f".procmgmt-bundle-{os.getpid()}.tar"
        self._bundle_at: dict[str, str] = {}

    def say(self, line: str) -> None:
        """One line of progress."""
        self.out.write(line + "\n")
        self.out.flush()

    # --- entry points ------------------------------------------------------------------

    def switch(self, infra_path: str, dist_path: str, model_path: str, *,
               dry_run: bool = False) -> Outcome:
        """Deploy ``model_path`` as distributed over the infrastructure."""
        timeout = self.settings.model_timeout
        infra = load_infrastructure(infra_path, timeout)
        with evaluating(Placement()):
            model = load_model(model_path, self.settings)
        dist = load_distribution(dist_path, infra, model, timeout)
        files = {"infrastructure": os.path.abspath(infra_path),
                 "distribution": os.path.abspath(dist_path),
                 "model": model.file}

        def goals(hosts: Hosts, facts: Mapping[str, Any]) -> tuple[dict[str, Goal],
                                                                  NetworkBuild | None]:
            built = build_network(model_path, infra, dist, self.settings, facts,
                                  self.profile.staging())
            out = {}
            for name, tb in built.targets.items():
                if not tb.generation.processes:  # nothing (more) here: no generation
                    out[name] = Goal(None, HostState(None))
                    continue
                out[name] = Goal(None, HostState(tb.generation.backend,
                                                 {p.name: p.hash
                                                  for p in tb.generation.processes}),
                                 tb.bundle)
            return out, built

        targets = dict(infra.targets)
        previous = self.profile.current()
        if previous is not None:  # a target left out of the infrastructure is emptied
            for name, placed in previous.targets.items():
                targets.setdefault(name, placed.target)
        return self._run(targets, goals, files, dry_run)

    def undeploy(self, *, dry_run: bool = False) -> Outcome:
        """Stop everything on every target of the current coordinator generation."""
        current = self._current()
        targets = {n: p.target for n, p in current.targets.items()}

        def goals(hosts: Hosts, facts: Mapping[str, Any]) -> tuple[dict[str, Goal],
                                                                  NetworkBuild | None]:
            return {n: Goal(None, HostState(None)) for n in targets}, None

        return self._run(targets, goals, {"model": None}, dry_run)

    def switch_generation(self, number: int, *, dry_run: bool = False) -> Outcome:
        """Every target back on what coordinator generation ``number`` names."""
        wanted = self.profile.load(number)
        current = self.profile.current()
        targets = {n: p.target for n, p in wanted.targets.items()}
        if current is not None:
            for n, p in current.targets.items():
                targets.setdefault(n, p.target)

        def goals(hosts: Hosts, facts: Mapping[str, Any]) -> tuple[dict[str, Goal],
                                                                  NetworkBuild | None]:
            out = {}
            for n in targets:
                placed = wanted.targets.get(n)
                path = placed.path if placed else None
                info = facts[n].get("inspected", {}).get(path) if path else None
                out[n] = Goal(path, _state(info))
            return out, None

        return self._run(targets, goals, wanted.files, dry_run, number=number,
                         edges_from=wanted.edges)

    def rollback(self, *, dry_run: bool = False) -> Outcome:
        """Back to the coordinator generation before the current one."""
        current = self.profile.current_number()
        older = [n for n in self.profile.numbers() if current is None or n < current]
        if not older:
            raise UsageError("unable to roll back: there is no network generation before "
                             "the current one (see --list-generations)")
        return self.switch_generation(max(older), dry_run=dry_run)

    def _current(self) -> CoordinatorGeneration:
        current = self.profile.current()
        if current is None:
            raise UsageError("nothing is deployed by this network profile yet")
        return current

    # --- the transition ------------------------------------------------------------------

    def _run(self, targets: Mapping[str, Target], make_goals: GoalMaker,
             files: Mapping[str, str | None], dry_run: bool, number: int | None = None,
             edges_from: list[tuple[str, str, str, str]] | None = None) -> Outcome:
        t0 = time.monotonic()
        self._unlocked = set()
        self._bundle_at = {}
        sessions = {n: agent_command(t) for n, t in targets.items()}
        with self.profile.lock(), Hosts(targets, sessions=sessions) as hosts:
            self.say(f"connected to {len(targets) - len(hosts.unreachable)} of {len(targets)} "
                     f"host(s) in {time.monotonic() - t0:.2f} s")
            if hosts.unreachable:
                raise DeployError("unreachable: " + _fail_text(hosts.unreachable)
                                  + "; nothing was changed on any host")
            previous = self.profile.current()
            inspect = {}
            if number is not None:
                wanted = self.profile.load(number)
                inspect = {n: [p.path] for n, p in wanted.targets.items() if p.path}
            # The lock goes with the probe (one round trip): every target is locked
            # before anything is built or changed; a dry run locks nothing.
            token = "" if dry_run else (f"{socket.gethostname()}:{os.getpid()}:"
                                        f"{uuid.uuid4().hex[:12]}:{self.profile.dir}")
            probes = {n: {"inspect": inspect.get(n, []), "token": token} for n in targets}
            facts_raw: dict[str, dict[str, Any] | Result] = {}
            try:
                facts_raw.update(agent(hosts, "probe", probes))
                stale = self._stale_locks(facts_raw)
                if stale:  # locks of coordinators that are gone: taken over, said so
                    for name, holder in sorted(stale.items()):
                        self.say(f"{name}: taking over the network lock of {holder}")
                    facts_raw.update(agent(hosts, "probe", {
                        n: {**probes[n], "takeover": h} for n, h in stale.items()}))
                missing = [n for n, r in facts_raw.items()
                           if isinstance(r, Result) and lacks_procmgmt(r)]
                if missing:  # installed where it is missing, then asked again
                    self.say("installing procmgmt on " + ", ".join(sorted(missing)))
                    install(hosts, missing)
                    facts_raw.update(agent(hosts, "probe", {n: probes[n] for n in missing}))
                failed = _failures(facts_raw)
                if failed:
                    raise DeployError("cannot probe or lock " + _fail_text(failed)
                                      + "; nothing was changed on any host")
                facts = {n: r for n, r in facts_raw.items() if isinstance(r, dict)}
                return self._transition(hosts, token, targets, make_goals, facts, previous,
                                        files, dry_run, number, edges_from)
            finally:
                if token:  # every lock this run took and no last step released
                    self._unlock(hosts, token, [n for n, r in facts_raw.items()
                                                if isinstance(r, dict)
                                                and n not in self._unlocked])

    def _stale_locks(self, results: Mapping[str, dict[str, Any] | Result]) -> dict[str, str]:
        """Per host refused by another deployment's network lock, its holder when that
        deployment is gone: any, with ``--break-lock`` (the user's judgement); else
        only a coordinator of this machine and this profile whose process is dead
        (this run holds the profile's lock, so none of its runs is alive; the pid is
        checked too, in case another machine shares the host name and path)."""
        stale = {}
        for name, result in results.items():
            if not isinstance(result, Result):
                continue
            found = re.search(re.escape(LOCKED_BY) + r" \((.+?)\);", result.reason())
            if found is None:
                continue
            holder = found.group(1)
            if self.break_lock or _gone_here(holder, self.profile.dir):
                stale[name] = holder
        return stale

    def _unlock(self, hosts: Hosts, token: str, names: list[str]) -> None:
        """Release the lock (and remove a bundle never received) on ``names``."""
        if names:
            agent(hosts, "unlock", {n: {"token": token, "bundle": self._bundle_at.get(n)}
                                    for n in names})

    def _transition(self, hosts: Hosts, token: str, targets: Mapping[str, Target],
                    make_goals: GoalMaker, facts: dict[str, dict[str, Any]],
                    previous: CoordinatorGeneration | None,
                    files: Mapping[str, str | None], dry_run: bool, number: int | None,
                    edges_from: list[tuple[str, str, str, str]] | None) -> Outcome:
        """Plan, then (unless a dry run) transfer, move every host and record."""
        t0 = time.monotonic()
        goals, built = make_goals(hosts, facts)
        if built is not None:
            self.say(f"built {len(built.targets)} target(s) in {time.monotonic() - t0:.2f} s")
        olds = {n: _state(facts[n]["current"]) for n in targets}
        old_paths = {n: (facts[n]["current"] or {}).get("path") for n in targets}
        # Stops follow the old generations' edges (each host's own and the previous
        # network generation's cross-host ones), starts the new ones'.
        depends_old = _merge(_edge_map(previous.edges if previous is not None else []),
                             *(_local_edges(n, facts[n]["current"]) for n in targets))
        if built is not None:
            depends_new = built.depends
        else:
            depends_new = _merge(_edge_map(edges_from or []), *(
                _local_edges(n, facts[n].get("inspected", {}).get(goals[n].path))
                for n in goals if goals[n].path))
        outcome = Outcome(number)
        for n in sorted(targets):
            goal = goals.get(n, Goal(None, HostState(None)))
            goals[n] = goal
            obsolete, new = changes(olds[n], goal.state)
            lines = [f"stop     {p}" for p in sorted(obsolete - new)]
            lines += [f"{'restart ' if p in obsolete else 'start   '} {p}"
                      for p in sorted(new)]
            lines += [f"keep     {p}" for p in sorted(set(goal.state.hashes) - new)]
            outcome.plan[n] = lines or ["nothing to do"]
            self.say(f"{n}:")
            for line in outcome.plan[n]:
                self.say(f"  {line}")
        if dry_run:
            return outcome
        self._goals = goals
        self._transfer(hosts, goals)
        try:
            self._move(hosts, token, olds, goals, depends_old, depends_new, old_paths)
        except KeyboardInterrupt:
            self.say("interrupted; rolling every host back")
            self._roll_back(hosts, token, goals, olds, old_paths, depends_old,
                            depends_new)
            raise InterruptError("interrupted: every host is back on its previous "
                                 "generation") from None
        except DeployError as exc:
            self.say(f"failed: {exc}; rolling every host back")
            self._roll_back(hosts, token, goals, olds, old_paths, depends_old,
                            depends_new)
            raise DeployError(f"{exc}; every host is back on its previous "
                              "generation") from None
        outcome.number = self._record(goals, targets, depends_new, files, number)
        return outcome

    def _transfer(self, hosts: Hosts, goals: dict[str, Goal]) -> None:
        """Copy each bundle to its host (received there by the host's first step)."""
        sending = {n: g for n, g in goals.items() if g.bundle}
        if not sending:
            return
        t0 = time.monotonic()
        for n, g in sending.items():
            local = isinstance(hosts.targets[n].reach, Local)
            self._bundle_at[n] = (g.bundle or "") if local else self._remote_bundle
        put = hosts.put({n: (g.bundle or "", self._remote_bundle) for n, g in sending.items()
                         if not isinstance(hosts.targets[n].reach, Local)})
        self.say(f"transferred {len(sending)} bundle(s) in {time.monotonic() - t0:.2f} s")
        failed = {n: r.reason() for n, r in put.items() if not r.ok}
        if failed:
            raise DeployError("cannot transfer to " + _fail_text(failed)
                              + "; nothing was changed on any host")

    def _move(self, hosts: Hosts, token: str, olds: Mapping[str, HostState],
              goals: Mapping[str, Goal], depends_old: Mapping[Node, set[Node]],
              depends_new: Mapping[Node, set[Node]],
              old_paths: Mapping[str, str | None]) -> None:
        """Stop waves, start waves, then every host exactly on its goal.

        The whole schedule is made first, so that each host's first step can carry
        its bundle (received, then switched to, in one call) and its last step can
        release its lock (one call less per host on the way)."""
        schedule = self._schedule(olds, goals, depends_old, depends_new, old_paths)
        last = {n: i for i, (_, steps) in enumerate(schedule) for n in steps}
        for i, (what, steps) in enumerate(schedule):
            requests = {}
            for n, step in steps.items():
                goal = goals[n]
                request: dict[str, Any] = {"keep": step["keep"], "unlock": last[n] == i,
                                           "drop": self._bundle_at.get(n)}
                if step["goal"]:
                    request["base"] = goal.path
                    if goal.bundle and goal.path is None:
                        request["bundle"] = self._bundle_at[n]
                else:
                    request["base"] = step["base"]
                requests[n] = request
            self._steps(hosts, token, requests, what)
            self._unlocked |= {n for n in steps if last[n] == i}

    @staticmethod
    def _schedule(olds: Mapping[str, HostState], goals: Mapping[str, Goal],
                  depends_old: Mapping[Node, set[Node]], depends_new: Mapping[Node, set[Node]],
                  old_paths: Mapping[str, str | None]
                  ) -> list[tuple[str, dict[str, dict[str, Any]]]]:
        """The steps, wave by wave: host -> base (the old generation, or the goal) and
        the names to keep of it (None: all of it)."""
        obsolete: set[Node] = set()
        new: set[Node] = set()
        for n, goal in goals.items():
            o, s = changes(olds[n], goal.state)
            obsolete |= {(n, p) for p in o}
            new |= {(n, p) for p in s}
        schedule: list[tuple[str, dict[str, dict[str, Any]]]] = []
        running = {n: set(olds[n].hashes) for n in goals}
        #: Hosts already exactly on their goal (a step's subset was the whole of it).
        arrived: set[str] = set()
        touched: set[str] = set()
        for wave in stop_waves(obsolete, depends_old):
            steps = {}
            for n in sorted({t for t, _ in wave}):
                running[n] -= {p for t, p in wave if t == n}
                steps[n] = {"goal": False, "base": old_paths[n], "keep": sorted(running[n])}
                touched.add(n)
            schedule.append(("stop", steps))
        started = {n: set(goals[n].state.hashes) - {p for t, p in new if t == n}
                   for n in goals}
        for wave in start_waves(new, {k: v for k, v in depends_new.items() if k in new}):
            steps = {}
            for n in sorted({t for t, _ in wave}):
                started[n] |= {p for t, p in wave if t == n}
                steps[n] = {"goal": True, "keep": sorted(started[n])}
                if started[n] == set(goals[n].state.hashes):
                    arrived.add(n)
            schedule.append(("start", steps))
        final = {n: {"goal": True, "keep": None} for n, g in goals.items()
                 if n not in arrived
                 and (n in touched or g.bundle is not None or g.path != old_paths[n])
                 and (g.path is not None or g.bundle is not None
                      or olds[n].backend is not None)}
        if final:
            schedule.append(("record", final))
        return schedule

    def _steps(self, hosts: Hosts, token: str, steps: Mapping[str, dict[str, Any]],
               what: str) -> None:
        if not steps:
            return
        t0 = time.monotonic()
        results = agent(hosts, "step", {n: {"token": token, **s} for n, s in steps.items()})
        self.say(f"{what}: " + ", ".join(sorted(steps)) + f" ({time.monotonic() - t0:.2f} s)")
        for n, r in results.items():
            if isinstance(r, dict):
                self._numbers[n] = r.get("number")
                if r.get("received"):
                    self._goals[n].path = r["received"]
        failed = _failures(results)
        if failed:
            raise DeployError(f"{what} failed on " + _fail_text(failed))

    def _roll_back(self, hosts: Hosts, token: str, goals: Mapping[str, Goal],
                   olds: Mapping[str, HostState], old_paths: Mapping[str, str | None],
                   depends_old: Mapping[Node, set[Node]],
                   depends_new: Mapping[Node, set[Node]]) -> None:
        """Every host back on its generation from before the transition.

        Where each host is now is asked again (a host whose step failed has already
        been restored by its own engine, one that succeeded is on a wave of the new
        generation); from there the same waves run the other way round, to the old
        generations. A host already there is left alone."""
        now = agent(hosts, "probe", {n: {"token": token} for n in goals})
        failed = _failures(now)
        if failed:
            raise DeployError(f"cannot reach {_fail_text(failed)} to roll back: run "
                              "'procmgmt network switch --rollback' once it is reachable")
        here = {n: _state(r["current"]) for n, r in now.items() if isinstance(r, dict)}
        paths = {n: (r["current"] or {}).get("path") for n, r in now.items()
                 if isinstance(r, dict)}
        self._goals = {n: Goal(old_paths[n], olds[n]) for n in goals}
        try:
            self._move(hosts, token, here, self._goals, depends_new, depends_old, paths)
        except DeployError as exc:
            raise DeployError(f"{exc}; the rollback failed too: run 'procmgmt repair' and "
                              "'procmgmt status' on the hosts named") from None

    def _record(self, goals: Mapping[str, Goal], targets: Mapping[str, Target],
                depends: Mapping[Node, set[Node]], files: Mapping[str, str | None],
                number: int | None) -> int:
        if number is not None:
            self.profile.set_current(number)
            return number
        placed = {n: Placed(targets[n], g.path, self._numbers.get(n))
                  for n, g in goals.items()}
        edges = sorted((a[0], a[1], b[0], b[1]) for a, deps in depends.items()
                       for b in deps if a[0] != b[0])
        current = self.profile.current()
        if current is not None and current.edges == edges and {
                n: p.path for n, p in current.targets.items()} == {
                n: p.path for n, p in placed.items()}:
            return current.number  # the very same deployment: no new number
        return self.profile.add(placed, edges, dict(files))


def _edge_map(edges: list[tuple[str, str, str, str]]) -> dict[Node, set[Node]]:
    out: dict[Node, set[Node]] = {}
    for a_t, a_p, b_t, b_p in edges:
        out.setdefault((a_t, a_p), set()).add((b_t, b_p))
    return out

