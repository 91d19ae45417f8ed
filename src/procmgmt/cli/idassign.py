"""``procmgmt id-assign``: give instances unique ports, UIDs, GIDs from declared pools.

The ids document goes to stdout unless ``--output-file`` names a file,
which is then replaced atomically (``--ids ids.json --output-file
ids.json`` updates in place). Changes (assigned, dropped) are listed on
stderr so stdout stays a clean JSON document for redirection.
"""

from __future__ import annotations

import argparse
import os
import sys

from procmgmt.cli.common import Subcommands, model_arg, model_path
from procmgmt.errors import IdsFileError
from procmgmt.ids import assign_for_model, write_atomic
from procmgmt.settings import Settings


def _cfg_id_assign(p: argparse.ArgumentParser) -> None:
    model_arg(p)
    p.add_argument("--id-resources", required=True, metavar="RESOURCES",
                   help='JSON file of ID pools: {"webapp_ports": {"min": 5000, "max": 6000, '
                        '"step": 1, "scope": "global"}, ...}')
    p.add_argument("--output-file", metavar="FILE",
                   help="write the ids file here (atomically) instead of to stdout")


def _stdout_is(path: str) -> bool:
    """True when stdout is the file at ``path`` (``--ids f > f`` emptied it already)."""
    try:
        out = os.fstat(sys.stdout.fileno())
        target = os.stat(path)
    except (OSError, ValueError, AttributeError):
        return False
    return (out.st_dev, out.st_ino) == (target.st_dev, target.st_ino)


def cmd_id_assign(args: argparse.Namespace, settings: Settings) -> int:
    # --ids (a settings option shared with build/switch) names the previous ids
    # file here: its still-valid assignments are kept.
    args.ids = settings.ids_file
    if args.ids and not args.output_file and _stdout_is(args.ids):
        raise IdsFileError(f"{args.ids}: stdout is redirected onto the ids file being read, so "
                           "the shell has emptied it; restore it (e.g. from version control) "
                           "and use --output-file instead")
    result = assign_for_model(model_path(args), args.id_resources, args.ids, settings)
    text = result.assignments.to_json()
    for line in result.describe():
        print(f"procmgmt: {line}", file=sys.stderr)
    if args.output_file:
        write_atomic(args.output_file, text)
    else:
        sys.stdout.write(text)
    return 0


def register(subparsers: Subcommands) -> None:
    """Register id-assign."""
    subparsers.add("id-assign",
        "assign unique IDs (ports, uids, gids) to the instances that require "
        "them and print the ids file",
        cmd_id_assign, _cfg_id_assign)
