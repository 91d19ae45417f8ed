"""``procmgmt image``: a model, a manager and a flavour in, an OCI image layout tar out.

The generation is rendered the usual way (:func:`procmgmt.deploy.build.render`)
with settings whose directories are paths *inside the image*, laid out by
:mod:`.generation` and :mod:`.managers`, and put in the second layer with the
accounts and the state directories; the first layer is the closure
(:mod:`.closure`) of everything that runs. Nothing is written on the host but
the output file.

Flavours: *privileged* (PID 1 runs as root; processes switch to the model's
users, which the image's ``/etc/passwd`` holds) and *unprivileged* (PID 1 and
every process run as one given uid; no user switching, as in an unprivileged
deployment on a host; the state directories belong to that uid).
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass

from procmgmt import fsutil
from procmgmt.backends import get_backend
from procmgmt.deploy.build import evaluate, render
from procmgmt.errors import UsageError
from procmgmt.image import accounts, closure, layer, oci, roots
from procmgmt.image.generation import ImageGeneration, place
from procmgmt.image.managers import MANAGERS, layout
from procmgmt.image.managers.start import Owner, Start
from procmgmt.image.tree import Tree
from procmgmt.model.spec import SYSTEM_PATH
from procmgmt.settings import Settings, resolve

#: The state dir of an image unless one is given: the system layout (/var, /run, /tmp).
IMAGE_STATE_DIR = "/var"
#: The manager when none is chosen: the lightest to carry (a shell and the scripts).
DEFAULT_MANAGER = "sysvinit"
_NAME = re.compile(r"[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*")
_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")


@dataclass(frozen=True)
class ImageOptions:
    """What the command line says about the image."""

    #: The process manager (backend) that runs as PID 1.
    manager: str
    #: ``(uid, gid)`` for the unprivileged flavour; None: privileged.
    run_as: tuple[int, int] | None = None
    #: Image directories; None: derived from :data:`IMAGE_STATE_DIR` as usual.
    dirs: dict[str, str] = dataclasses.field(default_factory=dict)
    name: str = "procmgmt"
    tag: str = "latest"


@dataclass(frozen=True)
class Image:
    """A built image, before it is written."""

    files: dict[str, bytes]
    closure: closure.Closure
    generation: ImageGeneration
    start: Start
    config: dict[str, object]

    @property
    def digest(self) -> str:
        """The manifest's digest: the image's identity."""
        index = json.loads(self.files["index.json"])
        return str(index["manifests"][0]["digest"])


def parse_user(text: str) -> tuple[int, int]:
    """``UID`` or ``UID:GID`` (numbers: the image's /etc/passwd is written from them)."""
    uid, _, gid = text.partition(":")
    if not uid.isdigit() or (gid and not gid.isdigit()):
        raise UsageError(f"--user: expected UID or UID:GID as numbers, got {text!r}")
    return int(uid), int(gid or uid)


def parse_name(text: str) -> tuple[str, str]:
    """``NAME[:TAG]`` as docker accepts it (lower case name, tag of up to 128 characters)."""
    name, _, tag = text.rpartition(":") if ":" in text.rsplit("/", 1)[-1] else (text, "", "")
    tag = tag or "latest"
    if not _NAME.fullmatch(name) or not _TAG.fullmatch(tag):
        raise UsageError(f"--name: {text!r} is not NAME[:TAG] (lower-case name of letters, "
                         "digits and . _ - /, tag of letters, digits and . _ -)")
    return name, tag


def image_settings(base: Settings, options: ImageOptions) -> Settings:
    """The settings the generation is rendered with: the image's directories
    (never the host's), the chosen manager, privileged or not."""
    for key, value in options.dirs.items():
        if not value.startswith("/"):
            raise UsageError(f"image {key.replace('_', ' ')} must be absolute, got {value!r}")
    # The usual derivation (/var -> /run, /tmp; else STATE/run ...), from the given
    # image directories only: no PROCMGMT_*_DIR variable of the host's reaches it.
    d = resolve({"state_dir": IMAGE_STATE_DIR, **options.dirs}, environ={})
    user = "root" if options.run_as is None else accounts.RUN_USER
    return dataclasses.replace(
        base, state_dir=d.state_dir, runtime_dir=d.runtime_dir, log_dir=d.log_dir,
        tmp_dir=d.tmp_dir, cache_dir=d.cache_dir, spool_dir=d.spool_dir, lock_dir=d.lock_dir,
        lib_dir=d.lib_dir, process_manager=options.manager, process_manager_given=True,
        force_disable_user_change=options.run_as is not None, calling_user=user,
        calling_group=user)


def _state_dirs(settings: Settings, tree: Tree, owner: Owner) -> None:
    """The settings' directories, as ``init-state`` creates them; /tmp is sticky."""
    for attr, path in settings.dirs().items():
        if attr == "tmp_dir" and path == "/tmp":
            tree.directory(path, fsutil.STICKY_DIR, origin="state directory")
        elif attr == "state_dir" and path == IMAGE_STATE_DIR:
            tree.directory(path, fsutil.DIR, origin="state directory")  # /var stays root's
        else:
            tree.directory(path, fsutil.DIR, owner.uid, owner.gid, origin="state directory")
    tree.directory(settings.procmgmt_dir, fsutil.DIR, origin="state directory")
    tree.directory(settings.pid_parent_dir, fsutil.DIR, owner.uid, owner.gid,
                   origin="state directory")


def build_image(model_path: str, base: Settings, options: ImageOptions) -> Image:
    """Render, lay out, find the closure and assemble the image (nothing is written)."""
    if options.manager not in MANAGERS:
        raise UsageError(f"procmgmt image runs {', '.join(sorted(MANAGERS))} as PID 1, not "
                         f"{options.manager} (choose one with -P)")
    settings = image_settings(base, options)
    backend = get_backend(options.manager)
    model, specs = evaluate(model_path, settings)
    result = render(model, specs, settings, backend)

    top = Tree()
    gen = place(result, settings, top)
    if options.run_as is None:
        owner = Owner(0, 0)
        accts = accounts.privileged((s.credentials for s in specs), settings)
    else:
        owner = Owner(*options.run_as)
        accts = accounts.unprivileged(*options.run_as)
    _state_dirs(settings, top, owner)
    start = layout(gen, settings, top, owner)
    top.file("/etc/passwd", accts.passwd(), 0o644, origin="image accounts")
    top.file("/etc/group", accts.group(), 0o644, origin="image accounts")
    for home, uid, gid in accts.homes:
        top.directory(home, fsutil.DIR, uid, gid, origin="home directory (create_home)")

    finder = closure.Finder(SYSTEM_PATH, skip_prefixes=[*settings.dirs().values()])
    for spec in specs:  # first: a file's reason names the model where it does
        roots.model(spec, finder)
    entrypoint = roots.manager(start.entrypoint, start.programs, finder)
    roots.rendered(gen, finder)
    for package in start.python_packages:
        roots.python_package(package, finder)
    bottom = Tree()
    finder.closure.add_to(bottom)
    _check_overlap(bottom, top)

    layers = [layer.write_layer(bottom), layer.write_layer(top)]
    user = "0:0" if options.run_as is None else f"{options.run_as[0]}:{options.run_as[1]}"
    config = oci.image_config(
        layers=layers, entrypoint=entrypoint, env=start.env, user=user, workdir="/",
        labels={"org.procmgmt.backend": options.manager,
                "org.procmgmt.flavour": "privileged" if options.run_as is None
                else "unprivileged",
                "org.procmgmt.processes": " ".join(p.name for p in gen.processes)},
        stop_signal="SIGTERM")
    files = oci.layout_files(config, layers, options.name, options.tag)
    return Image(files, finder.closure, gen, dataclasses.replace(start, entrypoint=entrypoint),
                 config)


def _check_overlap(bottom: Tree, top: Tree) -> None:
    """A path in both layers would be shadowed silently: say which, and who wants it."""
    for path, entry in top.items():
        below = bottom.get(path)
        if below is not None and not (below.kind == entry.kind == "dir"):
            raise UsageError(f"image path {path} is both carried from the host "
                             f"({below.origin}) and written by procmgmt ({entry.origin})")


def write_image(image: Image, output: str) -> None:
    """Write ``image`` as an OCI layout tar at ``output``."""
    oci.write_tar(output, image.files)


def listing(image: Image) -> Iterable[str]:
    """The closure, one path a line with why it is there."""
    return image.closure.listing()
