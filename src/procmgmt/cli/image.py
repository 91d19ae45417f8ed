"""``procmgmt image``: build a multi-process OCI image of a model (see :mod:`procmgmt.image`)."""

from __future__ import annotations

import argparse
import os
import sys

from procmgmt.cli.common import Subcommands, model_arg, model_path
from procmgmt.errors import UsageError
from procmgmt.settings import FIELDS, Settings


def _configure(p: argparse.ArgumentParser) -> None:
    p.epilog = ("The directory options (--state-dir, --runtime-dir, ...) name paths inside "
                "the image\n(default: /var, /run, /tmp); PROCMGMT_*_DIR variables are not "
                "read. Without -P the\nimage runs sysvinit. See docs/images.md.")
    model_arg(p)
    p.add_argument("-o", "--output", required=True, metavar="IMAGE.tar",
                   help="the OCI image layout tar to write (replaced atomically)")
    p.add_argument("--user", metavar="UID[:GID]",
                   help="unprivileged flavour: PID 1 and every process run as this uid "
                        "(no user switching); without it the image runs as root and the "
                        "processes switch to the model's users")
    p.add_argument("--name", default="procmgmt", metavar="NAME[:TAG]",
                   help="the image's name and tag (default procmgmt:latest): umoci's "
                        "DIR:TAG and docker load's NAME:TAG")
    p.add_argument("--list-closure", action="store_true",
                   help="print every host file carried into the image and why")


def cmd_image(args: argparse.Namespace, settings: Settings) -> int:
    """Build the image; the directory options name paths inside it."""
    from procmgmt.image.build import (
        DEFAULT_MANAGER,
        ImageOptions,
        build_image,
        listing,
        parse_name,
        parse_user,
        write_image,
    )

    output = os.path.abspath(args.output)
    if not os.path.isdir(os.path.dirname(output)):
        raise UsageError(f"--output: directory {os.path.dirname(output)} does not exist")
    if os.path.isdir(output):
        raise UsageError(f"--output: {output} is a directory; name the tar file to write")
    name, tag = parse_name(args.name)
    # Only the command line's directory options: PROCMGMT_*_DIR variables describe
    # the host's deployment, not the image.
    dirs = {f.attr: os.path.abspath(getattr(args, f.attr)) for f in FIELDS
            if f.kind == "path" and f.attr.endswith("_dir") and getattr(args, f.attr, None)}
    manager = settings.process_manager if settings.process_manager_given else DEFAULT_MANAGER
    options = ImageOptions(manager=manager,
                           run_as=parse_user(args.user) if args.user is not None else None,
                           dirs=dirs, name=name, tag=tag)
    image = build_image(model_path(args), settings, options)
    write_image(image, output)
    if args.list_closure:
        for line in listing(image):
            print(line)
    size = os.path.getsize(output)
    print(f"wrote {output}: {name}:{tag} ({manager}, "
          f"{'privileged' if options.run_as is None else 'unprivileged'}, "
          f"{len(image.generation.processes)} processes, {len(image.closure.files)} host "
          f"files carried, {size / 1e6:.1f} MB), digest {image.digest}", file=sys.stderr)
    return 0


def register(subparsers: Subcommands) -> None:
    """Register ``image``."""
    subparsers.add("image",
                   "build an OCI image (a tar, no daemon) whose PID 1 runs the model with "
                   "sysvinit, s6 or supervisord",
                   cmd_image, _configure)
