"""supervisord as PID 1, in the foreground (``-n``): the config, the programs file
and the ``bin`` links the activator writes on a host
(:mod:`procmgmt.backends.supervisord.links`), the links pointing into the
image's store entries. It runs with the Python procmgmt runs with and the very
``supervisor`` package procmgmt uses, both carried into the image (with the
interpreter's standard library: tens of megabytes, which is why sysvinit and s6
images are lighter). SIGTERM stops every program and supervisord exits.
"""

from __future__ import annotations

import os

import supervisor

from procmgmt.backends.supervisord import embedded
from procmgmt.backends.supervisord.format import PROGRAMS_FILE, programs_text
from procmgmt.backends.supervisord.links import helper_links, program_of
from procmgmt.image.generation import ImageGeneration, Placed
from procmgmt.image.managers.start import Owner, Start
from procmgmt.image.tree import Tree
from procmgmt.model.spec import SYSTEM_PATH
from procmgmt.settings import Settings


def layout(gen: ImageGeneration, settings: Settings, tree: Tree, owner: Owner) -> Start:
    """``supervisord.conf`` (nodaemon), the links, and the supervisord command."""
    directory = os.path.join(settings.procmgmt_dir, "supervisord", settings.profile)
    tag = f"supervisord-{settings.profile}"
    socket_path = os.path.join(settings.runtime_dir, f"{tag}.sock")
    pid_file = os.path.join(settings.runtime_dir, f"{tag}.pid")
    log_file = os.path.join(settings.log_dir, f"{tag}.log")
    embedded.check_paths(directory, socket_path, pid_file, log_file)
    conf = os.path.join(directory, "supervisord.conf")
    text = embedded.base_config(settings, directory=directory, socket_path=socket_path,
                                pid_file=pid_file, log_file=log_file,
                                programs=len(gen.processes), nodaemon=True,
                                as_root=owner.uid == 0)
    tree.file(conf, text.encode(), 0o644, origin="supervisord image config")
    for d in ("conf.d", "bin"):
        tree.directory(os.path.join(directory, d), origin="supervisord image config")
    if gen.processes:
        programs = programs_text((p.name, _program(p)) for p in gen.processes)
        tree.file(os.path.join(directory, "conf.d", PROGRAMS_FILE), programs, 0o644,
                  origin="supervisord image programs")
    for path, target in helper_links(gen.processes, os.path.join(directory, "bin")).items():
        tree.symlink(path, target, origin=f"helper {os.path.basename(path)}")
    package_parent = os.path.dirname(os.path.dirname(os.path.abspath(supervisor.__file__)))
    env = [f"PATH={SYSTEM_PATH}", f"PYTHONPATH={package_parent}"]
    return Start(tuple(embedded.command(conf, nodaemon=True)), tuple(env),
                 python_packages=(supervisor.__name__,))


def _program(p: Placed) -> bytes:
    """The process's rendered program file, from the files placed in its entry."""
    wanted = program_of(p)
    for f in p.files:
        if f.path == wanted and f.content is not None:
            return f.content.encode()
    raise ValueError(f"{p.name}: no rendered program file {wanted}")
