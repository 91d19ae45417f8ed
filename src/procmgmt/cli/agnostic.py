"""``generate-config``: agnostic JSON specs (``-P none``) back into native files.

The counterpart of ``nixproc-generate-config``: one spec (plus its
dependencies) to the files of a real backend, in a directory (``-o``) or in
the store. Writing specs is the ``none`` backend's job
(:mod:`procmgmt.backends.none`), through ``build``/``generate`` like any other.
"""

from __future__ import annotations

import argparse
import os
import sys

from procmgmt import fsutil
from procmgmt.agnostic import load_specs
from procmgmt.backends import capabilities_of, get_backend
from procmgmt.backends.base import File
from procmgmt.cli.common import Subcommands
from procmgmt.deploy import store
from procmgmt.deploy.build import render
from procmgmt.deploy.gc import store_lock
from procmgmt.errors import UsageError
from procmgmt.settings import FIELDS_BY_ATTR, Settings
from procmgmt.validate import validate


def _write_dir(out: str, files: list[File]) -> None:
    """Write ``files`` below ``out``, replacing same-named files (as ``generate`` does)."""
    fsutil.ensure_dir(out)
    for f in files:
        target = os.path.join(out, f.path)
        if os.path.lexists(target):
            os.unlink(target)
    store.write_files(out, files)


# --- generate-config ---------------------------------------------------------------

def _cfg_generate_config(p: argparse.ArgumentParser) -> None:
    p.add_argument("spec", metavar="SPEC.json",
                   help="an agnostic spec (from 'procmgmt build -P none' or nix-processmgmt's "
                        "processManager = null); its dependencies are translated too")
    p.add_argument("-o", "--output", metavar="OUTDIR",
                   help="write the native files into OUTDIR (created) instead of the store")


def _explicit_process_manager(args: argparse.Namespace) -> str:
    """-P or $PROCMGMT_PROCESS_MANAGER; there is no default: the target must be chosen."""
    value = getattr(args, "process_manager", None) or os.environ.get(
        FIELDS_BY_ATTR["process_manager"].env)
    if not value:
        raise UsageError("no process manager given: pass -P BACKEND (see 'procmgmt backends')")
    capabilities = capabilities_of(str(value))
    if capabilities is not None and not capabilities.deploys:
        raise UsageError(f"-P {value} writes no deployable files and generate-config "
                         "translates specs into them: pass a backend such as -P sysvinit")
    return str(value)


def cmd_generate_config(args: argparse.Namespace, settings: Settings) -> int:
    backend = get_backend(_explicit_process_manager(args))
    settings = settings.with_process_manager(backend.name)
    model = load_specs(args.spec)
    specs = validate(model, settings)
    result = render(model, specs, settings, backend)
    files = [f for r in result.processes for f in r.files] + result.generation_files
    for w in result.warnings:
        print(f"procmgmt: warning: {w}", file=sys.stderr)
    if args.output:
        out = os.path.abspath(args.output)
        _write_dir(out, files)
        print(f"wrote {len(files)} files for {len(result.processes)} processes to {out}")
        return 0
    top = next(inst.process.effective_name for inst in model.instances.values()
               if inst.origin[0] == model.file)
    with store_lock(settings, exclusive=False):
        path = store.add(settings.store_dir, f"{top}-{backend.name}", backend.name, files)
    print(path)
    return 0


def register(subparsers: Subcommands) -> None:
    """Register generate-config."""
    subparsers.add("generate-config",
        "translate an agnostic JSON spec (and its dependencies) into one "
        "backend's native files",
        cmd_generate_config, _cfg_generate_config)
