"""The pid and log files of services, prepared by root without following symlinks.

A process that switches user writes its pid file (and, under BSD rc's
daemon(8), its log) as that user, so they live in a directory the user owns:
:meth:`Settings.pid_dir`, one per service inside a parent only the deploying
user can write (never a sticky shared directory like /tmp, where any local
user could create the file or a symlink first). Root still opens files
there: a supervisor appends the process's output to its log, a script writes
the pid it started. A symlink planted there would make root create or
append to any file it links to, so before a process starts:

* its own directory is created (0755) and given to its user, after checking
  that the parent is ours and writable by nobody else and that the
  directory itself is no symlink;
* a log file in a directory someone else can write is opened with
  ``O_NOFOLLOW`` (and ``O_EXCL`` when created, then given to the service
  user, 0640): an existing symlink is an error that names it.

Reading pid files safely is :mod:`procmgmt.pids`' job.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import stat

from procmgmt.errors import DeployError
from procmgmt.manifest import DeployedProcess
from procmgmt.settings import Settings

#: Mode of a service's own pid directory: the user writes, everyone may look.
SERVICE_DIR_MODE = 0o755
#: Mode of a log file procmgmt creates for a service.
LOG_MODE = 0o640


def _ids(user: str | None) -> tuple[int, int] | None:
    """(uid, gid) to give files to: the service user's as root, else None (ours)."""
    if not user or os.geteuid() != 0:
        return None
    try:
        pw = pwd.getpwnam(user)
    except KeyError:
        raise DeployError(f"user {user!r} does not exist: cannot prepare its pid "
                          "directory") from None
    return pw.pw_uid, pw.pw_gid


def _symlink_error(path: str) -> DeployError:
    try:
        target = os.readlink(path)
    except OSError:
        target = "?"
    return DeployError(
        f"{path} is a symlink (to {target}) in a directory another user can write; "
        "procmgmt does not write through it. Find out who created it, remove it and "
        "deploy again")


def ensure_parent(settings: Settings) -> str:
    """Create :attr:`Settings.pid_parent_dir` (0755) if missing and check it is a
    real directory of ours that nobody else can write; its path."""
    parent = settings.pid_parent_dir
    try:
        with contextlib.suppress(FileExistsError):
            os.makedirs(os.path.dirname(parent), 0o755, exist_ok=True)
            os.mkdir(parent, 0o755)
            os.chmod(parent, 0o755)
        st = os.lstat(parent)
    except OSError as exc:
        raise DeployError(f"{parent}: cannot create the pid directories' parent: "
                          f"{exc.strerror}") from None
    if stat.S_ISLNK(st.st_mode):
        raise _symlink_error(parent)
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid() or st.st_mode & 0o022:
        raise DeployError(
            f"{parent} must be a directory owned by uid {os.geteuid()} that nobody else "
            f"can write (it is uid {st.st_uid}, mode {stat.S_IMODE(st.st_mode):04o}): "
            f"fix it with 'chown {os.geteuid()} {parent}; chmod 0755 {parent}'")
    return parent


def ensure_service_dir(settings: Settings, path: str, user: str | None) -> None:
    """Create the per-service directory ``path`` (0755, owned by ``user``) inside
    the checked parent; an existing one is re-owned (its account may have been
    re-created) after checking it is a directory and no symlink."""
    ensure_parent(settings)
    try:
        os.mkdir(path, SERVICE_DIR_MODE)
    except FileExistsError:
        pass
    except OSError as exc:
        raise DeployError(f"{path}: cannot create the pid directory: {exc.strerror}") from None
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as exc:
        if os.path.islink(path):
            raise _symlink_error(path) from None
        raise DeployError(f"{path}: cannot open the pid directory: {exc.strerror}") from None
    try:
        os.fchmod(fd, SERVICE_DIR_MODE)
        ids = _ids(user)
        if ids is not None:
            os.fchown(fd, *ids)
    finally:
        os.close(fd)


def _others_can_write(directory: str) -> bool:
    """Someone other than root and us could create or replace files in ``directory``."""
    try:
        st = os.stat(directory)
    except OSError:
        return False
    return bool(st.st_mode & 0o022) or st.st_uid not in (0, os.geteuid())


def ensure_log_file(path: str, user: str | None) -> None:
    """Refuse a symlink at ``path`` and create the log without following one, when
    its directory is writable by someone else (elsewhere nothing to do)."""
    if not _others_can_write(os.path.dirname(path)):
        return
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        fd = os.open(path, flags | os.O_EXCL, LOG_MODE)
        created = True
    except FileExistsError:
        try:
            fd = os.open(path, flags | os.O_NONBLOCK)
        except OSError as exc:
            if os.path.islink(path):
                raise _symlink_error(path) from None
            raise DeployError(f"{path}: cannot open the log file: {exc.strerror}") from None
        created = False
    except OSError as exc:
        raise DeployError(f"{path}: cannot create the log file: {exc.strerror}") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise DeployError(f"{path} is not a regular file; remove it and deploy again")
        if created:
            os.fchmod(fd, LOG_MODE)
            ids = _ids(user)
            if ids is not None:
                os.fchown(fd, *ids)
    finally:
        os.close(fd)


def prepare(settings: Settings, proc: DeployedProcess) -> None:
    """Before ``proc`` starts: its own pid directory (when it has one) and its
    log file, as described above. DeployError names what is wrong."""
    pid_file = str(proc.extra.get("pid_file") or proc.pid_file or "")
    log_file = str(proc.extra.get("log_file") or "")
    parent = settings.pid_parent_dir
    for path in (pid_file, log_file):
        directory = os.path.dirname(path)
        if path and os.path.dirname(directory) == parent:
            ensure_service_dir(settings, directory, proc.user)
    if log_file:
        ensure_log_file(log_file, proc.user)
