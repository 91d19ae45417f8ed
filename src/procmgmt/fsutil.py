"""Creating procmgmt's own files and directories: explicit modes, no symlink followed.

Why this module exists: ``os.makedirs``/``open`` take their permissions from
the caller's umask. Run as root with umask 000, procmgmt used to leave its
record of created accounts world-writable (a local user adds an entry, root's
next switch deletes that account); with umask 077, the directories service
users must traverse came out 0700 and root deploys failed. And a path in a
directory another user can write may be a symlink planted there, so that
root writes wherever it points. Every helper here therefore

* sets the mode it is given, exactly, whatever the umask (the umask only
  ever narrows a mode for the instant between creation and ``fchmod``, so a
  path is never more open than asked for);
* never follows a symlink at the last component: ``O_NOFOLLOW`` on open,
  ``mkdir`` (which does not follow) for directories, ``rename`` over the
  target for atomic writes. An existing symlink there is an
  :class:`UnsafePathError` naming it.

Ancestors that already exist are used as they are (``/var/run`` is a
symlink on most systems); only what is created gets a mode.

The API, all of it:

* :func:`ensure_dir` (path, mode): create a directory and missing parents;
* :func:`open_file` (path, mode, flags): open or create a file, for locks,
  logs and appends;
* :func:`write_atomic` (path, data, mode): replace a file atomically;
* the mode constants below and :data:`SERVICE_UMASK`, the umask of every
  command through which procmgmt starts processes.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat

from procmgmt.errors import DeployError, UnsafePathError

#: Directory that others (service users) traverse: the state dirs, the store.
DIR = 0o755
#: Directory only its owner uses.
PRIVATE_DIR = 0o700
#: File others may read (configuration a manager reads, generated units).
FILE = 0o644
#: Records, journals, locks: the owner only (a lock others can open, they can hold).
PRIVATE = 0o600
#: Log files: the owner writes, its group reads.
LOG = 0o640
#: A shared tmp dir, like /tmp: everyone creates, only owners delete.
STICKY_DIR = 0o1777

#: The umask processes start with (init's, systemd's ``UMask=`` default): what a
#: manager or script creates is then never group- or world-writable, whatever the
#: umask of whoever ran procmgmt. A model's own ``umask`` still applies on top.
SERVICE_UMASK = 0o022


def _dir_fd(path: str) -> int:
    """An fd of the directory ``path`` itself (never of a symlink's target)."""
    try:
        return os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR) and os.path.islink(path):
            raise UnsafePathError(path, "is a symbolic link, not a directory") from None
        raise


def ensure_dir(path: str, mode: int = DIR, *, parents: int = DIR,
               owner: tuple[int, int] | None = None, enforce: bool = False) -> list[str]:
    """Create directory ``path`` with ``mode`` (and missing ancestors with ``parents``).

    Returns the directories created, outermost first. An existing directory is
    left as it is unless ``enforce`` (then its mode and ``owner`` are set again:
    for directories only procmgmt writes, which an older version or a hand may
    have loosened). ``owner`` is (uid, gid) of what is created. A symlink where
    the directory itself should be is an :class:`UnsafePathError`; existing
    ancestors are trusted (they are the system's or the caller's choice)."""
    path = os.path.abspath(path)
    missing: list[str] = []
    probe = path
    while not os.path.lexists(probe):
        missing.append(probe)
        parent = os.path.dirname(probe)
        if parent == probe:
            break
        probe = parent
    created: list[str] = []
    for d in reversed(missing):
        want = mode if d == path else parents
        try:
            # 0o700 at first: never more open than wanted, even for an instant.
            os.mkdir(d, 0o700)
        except FileExistsError:
            if d != path or not enforce:
                continue
        else:
            created.append(d)
        fd = _dir_fd(d)
        try:
            os.fchmod(fd, want)
            if owner is not None and d == path:
                os.fchown(fd, *owner)
        finally:
            os.close(fd)
    if path not in created:
        st = os.lstat(path)
        if stat.S_ISLNK(st.st_mode):
            if enforce:
                raise UnsafePathError(path, "is a symbolic link, not a directory")
            if not os.path.isdir(path):
                raise UnsafePathError(path, "is a symbolic link to something not a directory")
        elif not stat.S_ISDIR(st.st_mode):
            raise DeployError(f"{path} exists and is not a directory: move it away")
        elif enforce:
            fd = _dir_fd(path)
            try:
                if stat.S_IMODE(st.st_mode) != mode:
                    os.fchmod(fd, mode)
                if owner is not None and (st.st_uid, st.st_gid) != owner:
                    os.fchown(fd, *owner)
            finally:
                os.close(fd)
    return created


def open_file(path: str, mode: int = PRIVATE, flags: int = os.O_RDWR, *,
              exclusive: bool = False, owner: tuple[int, int] | None = None) -> int:
    """Open ``path`` without following a symlink, creating it with exactly ``mode``.

    ``flags`` are the access flags (``O_RDWR``, ``O_WRONLY | O_APPEND``, ...);
    ``O_CREAT``, ``O_NOFOLLOW``, ``O_NONBLOCK`` and ``O_CLOEXEC`` are always added,
    ``O_EXCL`` with ``exclusive`` (the file must not exist yet). A file that
    exists and belongs to us gets ``mode`` (and ``owner``) again; one that
    belongs to someone else is opened as it is and left to the caller to judge
    (``os.fstat`` of the returned fd). Anything but a regular file (a symlink, a
    FIFO, a device) is an :class:`UnsafePathError`. Returns the fd."""
    base = flags | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    try:
        fd = os.open(path, base | (os.O_EXCL if exclusive else 0), mode & 0o700)
    except OSError as exc:
        if exc.errno == errno.ELOOP or (exc.errno == errno.EEXIST and os.path.islink(path)):
            raise UnsafePathError(path, "is a symbolic link") from None
        if exc.errno == errno.ENXIO:  # a FIFO without a reader, a socket
            raise UnsafePathError(path, "is not a regular file") from None
        raise
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise UnsafePathError(path, "is not a regular file")
        os.set_blocking(fd, True)
        if st.st_uid == os.geteuid():
            if stat.S_IMODE(st.st_mode) != mode:
                os.fchmod(fd, mode)
            if owner is not None and (st.st_uid, st.st_gid) != owner:
                os.fchown(fd, *owner)
    except BaseException:
        os.close(fd)
        raise
    return fd


def write_atomic(path: str, data: str | bytes, mode: int = PRIVATE, *,
                 fsync: bool = False) -> None:
    """Replace ``path`` with ``data`` (mode ``mode``): readers see the old or the new
    file, never half of one. The new file is created beside it (``O_EXCL``, so never
    through a planted link) and renamed over ``path``, which replaces a symlink
    there instead of writing where it points. ``fsync`` makes it survive a crash."""
    raw = data.encode() if isinstance(data, str) else data
    directory, name = os.path.split(os.path.abspath(path))
    tmp = os.path.join(directory, f".{name}.{os.getpid()}.tmp")
    with contextlib.suppress(FileNotFoundError):
        os.unlink(tmp)  # a leftover of a killed writer with our pid
    fd = open_file(tmp, mode, os.O_WRONLY, exclusive=True)
    try:
        try:
            view = memoryview(raw)
            while view:
                view = view[os.write(fd, view):]
            if fsync:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def read_count(path: str) -> int | None:
    """The non-negative number a small counter file holds (a restart loop's count),
    or None when it is missing, not a regular file, a symlink (the file may be in a
    directory the service user can write) or not a number."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        text = os.read(fd, 32).decode("ascii", errors="replace").strip()
    except OSError:
        return None
    finally:
        os.close(fd)
    return int(text) if text.isdigit() else None
