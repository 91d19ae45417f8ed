"""The deploying commands (build, switch, generate, run, run-activity) and the
profile's housekeeping (status, init-state, gc, backends, repair).

Each handler parses, calls the library (:mod:`procmgmt.deploy.switch` for the
switch use case) and prints the result; nothing here decides how to deploy."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from typing import TextIO

from procmgmt import fsutil
from procmgmt.backends import backend_names, get_backend
from procmgmt.cli import generations
from procmgmt.cli.common import (
    Subcommands,
    activation_args,
    engine_options,
    model_arg,
    model_path,
)
from procmgmt.cli.watch import watch
from procmgmt.deploy import store
from procmgmt.deploy.build import evaluate, render
from procmgmt.deploy.engine import Engine, profile_lock
from procmgmt.deploy.gc import collect
from procmgmt.deploy.plan import Plan
from procmgmt.deploy.profile import Profile
from procmgmt.deploy.state import init_state
from procmgmt.deploy.switch import (
    Switcher,
    assign_ids,
    build_files,
    build_model,
    keep_current_backend,
)
from procmgmt.errors import GenerationError, UsageError
from procmgmt.manifest import load_generation
from procmgmt.settings import Settings

# --- build -------------------------------------------------------------------------

def _cfg_build(p: argparse.ArgumentParser) -> None:
    model_arg(p)
    p.add_argument("--undeploy", action="store_true", help="build the empty model")


def cmd_build(args: argparse.Namespace, settings: Settings) -> int:
    if not get_backend(settings.process_manager).capabilities.deploys and not args.undeploy:
        print(build_files(settings, model_path(args)))
        return 0
    built = build_model(settings, None if args.undeploy else model_path(args))
    print(built.generation.path)
    return 0


# --- switch ------------------------------------------------------------------------

def _cfg_switch(p: argparse.ArgumentParser) -> None:
    model_arg(p)
    ops = p.add_mutually_exclusive_group()
    ops.add_argument("--undeploy", action="store_true",
                     help="deploy the empty model: stop everything (state dirs stay)")
    ops.add_argument("--rollback", action="store_true",
                     help="switch back to the generation before the current one")
    ops.add_argument("--switch-generation", type=int, metavar="N",
                     help="switch to generation N")
    ops.add_argument("--list-generations", action="store_true",
                     help="list the generations: time, backend, model file, number of "
                          "processes and what changed against the one before")
    ops.add_argument("--delete-generations", metavar="SPEC",
                     help="delete generations: numbers ('3 4' or '3,4'), 'Nd' (older than "
                          "N days) or 'old' (all but the current)")
    ops.add_argument("--delete-all-generations", action="store_true",
                     help="delete every generation (only when nothing is deployed)")
    p.add_argument("--dry-run", action="store_true",
                   help="print the plan (what stops, starts, stays) and change nothing")
    p.add_argument("--diff", action="store_true",
                   help="print what MODEL changes against the current generation (processes "
                        "added, removed, changed and which fields and files) and deploy "
                        "nothing")
    p.add_argument("--replace", action="store_true",
                   help="allow MODEL to replace the deployment of another model file in this "
                        "profile (without it such a switch is refused)")
    p.add_argument("--json", action="store_true",
                   help="with --list-generations or --diff: machine-readable output")
    activation_args(p)
    p.add_argument("--no-rollback", action="store_true",
                   help="on failure keep the partial state for debugging (then 'procmgmt "
                        "repair' restores the current generation)")
    p.add_argument("--no-wait", action="store_true",
                   help="fail at once if another switch holds the profile lock")
    p.add_argument("--assign-ids", action="store_true",
                   help="run the ID assigner first (needs --id-resources and --ids; the ids "
                        "file is updated in place), so new instances get free IDs")
    p.add_argument("--id-resources", metavar="FILE",
                   help="ID resources file (JSON) for --assign-ids")


def _print_plan(plan: Plan) -> None:
    for line in plan.describe():
        print(line)


def cmd_switch(args: argparse.Namespace, settings: Settings) -> int:
    profile = Profile(settings)
    if args.json and not (args.list_generations or args.diff):
        raise UsageError("--json goes with --list-generations or --diff")
    if args.list_generations:
        generations.print_listing(profile, args.json)
        return 0
    if args.delete_generations is not None:
        with profile_lock(settings):
            deleted = profile.delete(profile.select(args.delete_generations))
        print("deleted generations: " + (" ".join(map(str, deleted)) or "none"))
        return 0
    if args.delete_all_generations:
        with profile_lock(settings):
            cur = profile.current_path()
            if cur and load_generation(cur).processes:
                raise UsageError("processes of the current generation are still deployed: "
                                 "run 'procmgmt switch --undeploy' first")
            profile.delete_all()
        return 0

    options = engine_options(args)
    if args.diff and (args.rollback or args.switch_generation is not None):
        raise UsageError("--diff compares a MODEL (or --undeploy) with the current "
                         "generation; use --dry-run with --rollback or --switch-generation")
    if args.rollback or args.switch_generation is not None:
        switcher = Switcher(settings, options, out=sys.stdout)
        if args.rollback:
            switched = switcher.rollback(dry_run=args.dry_run)
        else:
            switched = switcher.switch_to_generation(args.switch_generation,
                                                     dry_run=args.dry_run)
        if args.dry_run:
            _print_plan(switched.plan)
            return 0
        result = switched.result
        print(f"switched to generation {switched.number} "
              f"({_summary(result.started, result.stopped)})")
        return 0

    # Without -P, keep deploying with the manager the current generation uses.
    settings = keep_current_backend(settings)
    model = None if args.undeploy else model_path(args)
    if not (args.replace or args.dry_run or args.diff):
        # Before --assign-ids writes the ids file and before the switch takes the
        # profile lock: a refused switch changes nothing and waits for nobody.
        Switcher(settings).check_model(model)
    if args.assign_ids:
        settings = _assign_ids(args, settings)
    switcher = Switcher(settings, options, out=sys.stdout)
    preview = args.dry_run or args.diff
    switched = switcher.deploy(model, dry_run=preview, replace=args.replace)
    if preview:
        if args.diff:
            current = switcher.engine.current()
            generations.print_diff(current, profile.current_number(), switched.generation,
                                   args.json)
        else:
            _print_plan(switched.plan)
        if not args.replace:
            try:
                switcher.check_model(model)
            except UsageError as exc:
                print(f"procmgmt: note: {exc}", file=sys.stderr)
        return 0
    result = switched.result
    print(f"generation {result.generation} deployed with {switched.generation.backend} "
          f"({_summary(result.started, result.stopped)}, {result.seconds:.2f} s)")
    return 0


def _assign_ids(args: argparse.Namespace, settings: Settings) -> Settings:
    """--assign-ids: update the ids file for the model, then read it into settings."""
    if not args.id_resources or not settings.ids_file:
        raise UsageError("--assign-ids needs --id-resources FILE and --ids FILE "
                         "(the ids file is created or updated in place)")
    if args.undeploy:
        return settings
    settings, report = assign_ids(settings, model_path(args), args.id_resources)
    for line in report:
        print(line, file=sys.stderr)
    return settings


def _summary(started: list[str], stopped: list[str]) -> str:
    return f"{len(started)} started, {len(stopped)} stopped"


# --- generate ----------------------------------------------------------------------

def _cfg_generate(p: argparse.ArgumentParser) -> None:
    model_arg(p)
    p.add_argument("-o", "--output", required=True, metavar="OUTDIR",
                   help="directory to write the native files into (created)")


def cmd_generate(args: argparse.Namespace, settings: Settings) -> int:
    backend = get_backend(settings.process_manager)
    model, specs = evaluate(model_path(args), settings)
    result = render(model, specs, settings, backend)
    out = os.path.abspath(args.output)
    fsutil.ensure_dir(out)
    files = [f for r in result.processes for f in r.files] + result.generation_files
    for f in files:
        target = os.path.join(out, f.path)
        if os.path.lexists(target):
            os.unlink(target)
    store.write_files(out, files)
    for w in result.warnings:
        print(f"procmgmt: warning: {w}", file=sys.stderr)
    print(f"wrote {len(files)} files for {len(result.processes)} processes to {out}")
    return 0


# --- run-activity ------------------------------------------------------------------

def _cfg_activity(p: argparse.ArgumentParser) -> None:
    p.add_argument("activity", metavar="ACTIVITY",
                   help="start, stop, status, restart, reload or a custom activity")
    p.add_argument("-r", "--reverse", action="store_true",
                   help="reverse dependency order (use it for stop)")
    p.add_argument("--generation", type=int, metavar="N",
                   help="use generation N instead of the current one")
    activation_args(p)


def cmd_run_activity(args: argparse.Namespace, settings: Settings) -> int:
    profile = Profile(settings)
    path = profile.path_of(args.generation) if args.generation else profile.current_path()
    if not path:
        raise GenerationError("nothing is deployed in profile "
                              f"{settings.profile!r} (see 'procmgmt switch MODEL')")
    gen = load_generation(path)
    engine = Engine(settings, out=sys.stdout, options=engine_options(args))
    act = engine.activator(gen.backend)
    if args.activity == "start":
        init_state(settings)
        act.prepare(gen, None)
        # Readiness-gated and parallel, exactly like a switch's start phase.
        outcome = engine.start_processes(act, gen, list(gen.processes))
        for name, exc in outcome.failed.items():
            print(f"procmgmt: error: {name}: {exc}", file=sys.stderr)
        return 0 if outcome.ok else 1
    if args.activity == "stop" and args.reverse:
        outcome = engine.stop_processes(act, gen, list(reversed(gen.processes)))
        for name, exc in outcome.failed.items():
            print(f"procmgmt: error: {name}: {exc}", file=sys.stderr)
        return 0 if outcome.ok else 1
    procs = list(reversed(gen.processes)) if args.reverse else list(gen.processes)
    worst = 0
    for p in procs:
        try:
            rc = act.activity(gen, p, args.activity)
        except NotImplementedError:
            raise UsageError(f"the {gen.backend} backend has no activity "
                             f"{args.activity!r}") from None
        worst = max(worst, rc)
    return worst


# --- status / init-state / gc / backends -------------------------------------------

def _cfg_status(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("-w", "--watch", action="store_true",
                   help="report again every INTERVAL seconds until Ctrl-C (exit 0): redrawn "
                        "in place on a terminal, printed again (blank line between) "
                        "otherwise")
    p.add_argument("--interval", type=float, default=2.0, metavar="INTERVAL",
                   help="seconds between two reports of --watch (default 2)")


def cmd_status(args: argparse.Namespace, settings: Settings) -> int:
    if not args.watch:
        return _status_report(args, settings, sys.stdout)
    if args.json:
        raise UsageError("--watch redraws the text report; for --json, call status "
                         "--json as often as needed")
    if not args.interval > 0:
        raise UsageError(f"--interval must be more than 0 seconds, got {args.interval:g}")
    return watch(lambda out: _status_report(args, settings, out), args.interval, sys.stdout,
                 f"every {args.interval:g}s: procmgmt status (Ctrl-C ends)")


def _status_report(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    """Print the status report (text or JSON) on ``out``; its exit status."""
    from procmgmt.deploy import status

    profile = Profile(settings)
    path = profile.current_path()
    if not path:
        if args.json:
            print(json.dumps({"generation": None, "processes": [],
                              "settings": settings.dirs()}, indent=2), file=out)
        else:
            print(f"nothing deployed in profile {settings.profile!r}", file=out)
        return 0
    gen = load_generation(path)
    act = Engine(settings).activator(gen.backend)
    rows = status.rows(settings, gen, act)
    problems = act.manager_problems(gen)
    if args.json:
        print(json.dumps({"generation": profile.current_number(), "backend": gen.backend,
                          "processes": [r.to_json() for r in rows],
                          "manager_problems": problems,
                          "summary": status.summary(rows), "settings": settings.dirs()},
                         indent=2), file=out)
        return status.exit_status(rows, problems)
    print(f"generation {profile.current_number()} ({gen.backend})", file=out)
    width = max((len(r.name) for r in rows), default=0)
    for r in rows:
        if r.state == status.RUNNING:
            up = r.uptime()
            what = (f"pid {r.pid:<8}" if r.pid else " " * 12) + (
                f" uptime {status.duration(up):<7}" if up is not None else "")
        else:
            what = r.detail if r.state == status.DOWN else ""
        policy = f"  restart {r.restart}" if r.restart else ""
        if r.restarts is not None:
            policy += f" ({status.plural(r.restarts, 'restart')})"
        live = f"  liveness {r.liveness}" if r.liveness else ""
        log = f"  log {', '.join(r.log)}" if r.log else ""
        print(f"  {r.name:<{width}}  {r.state:<15}  {what}{policy}{live}{log}".rstrip(),
              file=out)
    print(status.summary(rows), file=out)
    for problem in problems:
        print(f"warning: {problem}", file=out)
    return status.exit_status(rows, problems)


def cmd_init_state(args: argparse.Namespace, settings: Settings) -> int:
    for path in init_state(settings):
        print(f"created {path}")
    return 0


def _cfg_gc(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dry-run", action="store_true", help="only list what would be deleted")


def cmd_gc(args: argparse.Namespace, settings: Settings) -> int:
    dead = collect(settings, dry_run=args.dry_run)
    for p in dead:
        print(("would delete " if args.dry_run else "deleted ") + p)
    print(f"{len(dead)} store entries {'unreferenced' if args.dry_run else 'deleted'}")
    return 0


def cmd_backends(args: argparse.Namespace, settings: Settings) -> int:
    from procmgmt.backends.table import capability_table, lifecycle_table

    print(capability_table(backend_names()))
    print()
    print(lifecycle_table(backend_names()))
    return 0


def _cfg_repair(p: argparse.ArgumentParser) -> None:
    p.add_argument("--abandon", action="store_true",
                   help="when the current generation cannot be restored: drop the journal of "
                        "the interrupted switch and keep whatever runs as it is ('procmgmt "
                        "doctor' then lists the processes no generation explains)")


def cmd_repair(args: argparse.Namespace, settings: Settings) -> int:
    engine = Engine(settings, out=sys.stdout)
    if args.abandon:
        left = engine.abandon()
        if left is None:
            print("nothing to abandon: no switch was interrupted")
            return 0
        print("dropped the journal of the interrupted switch; nothing was stopped or started")
        for line in left:
            print(f"  {line}")
        print("the current generation stays as recorded; run 'procmgmt doctor' to list "
              "processes no generation explains ('procmgmt doctor --stop' ends them)")
        return 0
    if engine.repair():
        print("repaired: the current generation runs again")
    else:
        print("nothing to repair")
    return 0


# --- run (stateless supervisord) ---------------------------------------------------

def _cfg_run(p: argparse.ArgumentParser) -> None:
    model_arg(p)


#: Suffix of the profile name under which ``run`` claims the accounts it creates.
RUN_CLAIM_SUFFIX = ".run"


def cmd_run(args: argparse.Namespace, settings: Settings) -> int:
    """As root (user changes allowed) the model's users and groups are created first,
    exactly as a switch creates them, and deleted again when supervisord exits:
    supervisord cannot start a program as a user that does not exist. They are
    claimed under ``<profile>.run``, so accounts a switched deployment of the same
    state dir also uses stay."""
    from procmgmt.backends.supervisord import run_stateless
    from procmgmt.deploy.accounts import create_new, delete_obsolete

    settings = settings.with_process_manager("supervisord")
    gen = build_model(settings, model_path(args)).generation
    claim = dataclasses.replace(settings, profile=settings.profile + RUN_CLAIM_SUFFIX)

    def say(message: str) -> None:
        print(f"procmgmt: {message}", file=sys.stderr)

    try:
        create_new(None, gen, claim, say)
        return int(run_stateless(settings, gen))
    finally:
        delete_obsolete(gen, None, claim, say)

def register(subparsers: Subcommands) -> None:
    """Register build, switch, generate, run-activity, status, init-state, gc, backends,
    repair and run."""
    subparsers.add("build",
        "render the model for a backend into the store and print the generation path",
        cmd_build, _cfg_build)
    subparsers.add("switch",
        "build the model and deploy it as a new generation; manage generations",
        cmd_switch, _cfg_switch)
    subparsers.add("generate",
        "write the native files of one backend into a directory (no deployment)",
        cmd_generate, _cfg_generate)
    subparsers.add("run-activity",
        "run an activity on every deployed process in dependency order",
        cmd_run_activity, _cfg_activity)
    subparsers.add("status",
        "state, PID, uptime and log of each process of the current generation "
        "(exit 3 unless all run); --watch redraws it",
        cmd_status, _cfg_status)
    subparsers.add("init-state",
        "create the state, runtime, log, tmp, cache, spool, lock and lib dirs",
        cmd_init_state)
    subparsers.add("gc",
        "delete store entries no generation references (state dirs are never touched)",
        cmd_gc, _cfg_gc)
    subparsers.add("backends",
        "list the backends and what each can express",
        cmd_backends)
    subparsers.add("repair",
        "after an interrupted or failed switch: bring the current generation back",
        cmd_repair, _cfg_repair)
    subparsers.add("run",
        "run the model under a foreground supervisord until interrupted (stateless)",
        cmd_run, _cfg_run)
