"""``procmgmt network``: deploy one model across the hosts of an infrastructure.

``network switch INFRA DIST MODEL`` (with ``--dry-run``), ``--rollback``,
``--switch-generation N``, ``--list-generations`` and ``--undeploy`` act on
the coordinator generations of the profile; ``network status`` and
``network logs`` ask procmgmt on every host of the current one.
"""

from __future__ import annotations

import argparse
import datetime
import json
import shlex
import sys
from typing import TYPE_CHECKING

from procmgmt.cli.common import Subcommands
from procmgmt.errors import UsageError
from procmgmt.settings import Settings

if TYPE_CHECKING:  # imported when run: every other command starts without it
    from procmgmt.network.transition import Network


def _cfg(p: argparse.ArgumentParser) -> None:
    # One parser with an ACTION word rather than nested subparsers: the settings
    # options then go anywhere on the line, as with every other command.
    p.add_argument("action", choices=("switch", "status", "logs"), metavar="ACTION",
                   help="switch: deploy (or move between network generations); status: every "
                        "host, every process; logs: the last lines of every process")
    p.add_argument("files", nargs="*", metavar="FILE",
                   help="switch: INFRA DIST MODEL (infrastructure, distribution and processes "
                        "model)")
    p.add_argument("--dry-run", action="store_true", help="switch: show the plan per host only")
    p.add_argument("--break-lock", action="store_true",
                   help="switch: take over the hosts' network locks of a deployment that "
                        "is gone (one of this machine and profile is noticed without it)")
    what = p.add_mutually_exclusive_group()
    what.add_argument("--rollback", action="store_true",
                      help="switch: every host back on the previous network generation")
    what.add_argument("--switch-generation", type=int, metavar="N",
                      help="switch: every host on network generation N")
    what.add_argument("--list-generations", action="store_true",
                      help="switch: list the network generations")
    what.add_argument("--undeploy", action="store_true",
                      help="switch: stop every process on every host")
    p.add_argument("--json", action="store_true", help="status: machine-readable output")
    p.add_argument("-n", type=int, default=20, metavar="N", help="logs: lines per process")


_SWITCH_ONLY = ("dry_run", "break_lock", "rollback", "list_generations", "undeploy")


def cmd_network(args: argparse.Namespace, settings: Settings) -> int:
    """Dispatch ``network ACTION``."""
    from procmgmt.network.transition import Network

    net = Network(settings, sys.stdout)
    net.break_lock = args.break_lock
    if args.action != "switch":
        given = [o for o in _SWITCH_ONLY if getattr(args, o)]
        if args.files or given or args.switch_generation is not None:
            raise UsageError(f"network {args.action}: takes no FILE and no switch options")
        return _status(net, args.json) if args.action == "status" else _logs(net, args.n)
    if args.list_generations:
        return _list(net)
    files = list(args.files)
    if args.rollback or args.undeploy or args.switch_generation is not None:
        if files:
            raise UsageError("network switch: no FILE goes with --rollback, "
                             "--switch-generation or --undeploy")
        if args.rollback:
            outcome = net.rollback(dry_run=args.dry_run)
        elif args.undeploy:
            outcome = net.undeploy(dry_run=args.dry_run)
        else:
            outcome = net.switch_generation(args.switch_generation, dry_run=args.dry_run)
    else:
        if len(files) != 3:
            raise UsageError("network switch: give INFRA DIST MODEL (infrastructure, "
                             f"distribution and processes model files), not {len(files)} "
                             "file(s)")
        outcome = net.switch(*files, dry_run=args.dry_run)
    if not args.dry_run:
        print(f"network generation {outcome.number} is current")
    return 0


def _list(net: Network) -> int:
    current = net.profile.current_number()
    for number in net.profile.numbers():
        gen = net.profile.load(number)
        when = datetime.datetime.fromtimestamp(gen.created).strftime("%Y-%m-%d %H:%M:%S")
        hosts = ", ".join(f"{n}:{p.number if p.number is not None else '-'}"
                          for n, p in sorted(gen.targets.items()))
        mark = "  (current)" if number == current else ""
        print(f"{number:>4}  {when}  {hosts}{mark}")
    return 0


def _per_host(net: Network, command: str) -> dict[str, tuple[bool, str]]:
    from procmgmt.network.reach import Hosts
    from procmgmt.network.remote import python, settings_flags

    current = net.profile.current()
    if current is None:
        raise UsageError("nothing is deployed by this network profile yet")
    targets = {n: p.target for n, p in current.targets.items()}
    with Hosts(targets) as hosts:
        results = hosts.run({n: f"{python(t)} -m procmgmt {command} {settings_flags(t)}"
                             for n, t in targets.items()})
    return {n: (r.ok, r.stdout if r.error is None else f"unreachable: {r.error}")
            for n, r in sorted(results.items())}


def _status(net: Network, as_json: bool) -> int:
    results = _per_host(net, "status --json")
    ok = True
    data = {}
    for host, (_, text) in results.items():
        try:
            data[host] = json.loads(text)
        except ValueError:
            data[host] = {"error": text.strip()}
            ok = False
    if as_json:
        print(json.dumps(data, indent=2, sort_keys=True))
    else:
        for host, rows in data.items():
            print(f"{host}:")
            if isinstance(rows, dict) and "error" in rows:
                print(f"  {rows['error']}")
                continue
            for row in rows.get("processes", []) if isinstance(rows, dict) else rows:
                print(f"  {row.get('name', '?'):<24} {row.get('state', '?')}")
    running = all(isinstance(r, dict) and "error" not in r and all(
        p.get("state") == "running" for p in r.get("processes", [])) for r in data.values())
    return 0 if ok and running else 3


def _logs(net: Network, count: int) -> int:
    results = _per_host(net, f"logs -n {shlex.quote(str(count))}")
    status = 0
    for host, (ok, text) in results.items():
        for line in text.splitlines():
            print(f"{host}: {line}")
        if not ok:
            status = 1
    return status


def register(subparsers: Subcommands) -> None:
    """Register network."""
    subparsers.add("network", "deploy one model across many hosts (switch, status, logs)",
                   cmd_network, _cfg)
