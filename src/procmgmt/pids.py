"""Pid files and live processes, read the same way everywhere, and trusted only
after checking.

The activators, the readiness checks, ``procmgmt doctor`` and the
supervisord backend all ask "which pid does this file name?" and "is that
process still alive?"; one answer keeps them agreeing with each other and
with the generated scripts.

A pid file is only a claim. Root signals the pid it names, so a pid file
that someone else can write lets that someone choose what root kills; a
planted pid file of a live process makes a service look "up" that never
started. systemd therefore trusts ``PIDFile=`` only when it is root-owned or
names a process of the unit's cgroup; s6 and runit never read pid files.
:func:`trusted_pid` is procmgmt's version of that rule, the only place it is
written down: every activator that signals or reports from a pid file asks
it, and treats a refused pid as "not running" after saying why.
"""

from __future__ import annotations

import logging
import os
import pwd
import re
import stat
import subprocess
import threading
import time
from dataclasses import dataclass

#: Environment variable every process procmgmt starts carries (``<state dir>:<profile>``).
#: Defined here (not in :mod:`procmgmt.validate`) so the trust rule needs no model code.
MARKER_DEPLOYMENT = "PROCMGMT_DEPLOYMENT"
MARKER_PROCESS = "PROCMGMT_PROCESS"

#: How a :class:`Verdict` ends.
TRUSTED = "trusted"
ABSENT = "absent"
REFUSED = "refused"


def read_pid_file(path: str, *, whole_line: bool = False) -> int | None:
    """The pid on the first line of ``path``, or None when missing, a symlink
    or not a plain number (no sign, no leading zero).

    Read the way the generated script reads it, so Python and shell agree on
    what counts as a pid: rc.subr takes the first word (the default);
    ``read -r pid`` in the sysvinit scripts takes the whole line
    (``whole_line=True``: ``"123 456"`` is no pid). Opened with
    ``O_NOFOLLOW``: a pid file that is a symlink names nothing (its target
    could be any file root can read).
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        with open(fd, encoding="utf-8", errors="replace", closefd=False) as f:
            line = f.readline(4096)
    except OSError:
        return None
    finally:
        os.close(fd)
    if whole_line:
        first = line.strip()
    else:
        words = line.split()
        first = words[0] if words else ""
    return int(first) if first.isdigit() and not first.startswith("0") else None


def _after_name(data: bytes, fields: int = -1) -> list[bytes]:
    """The fields of a ``/proc/PID/stat`` text after the command name (state, ppid,
    pgrp, ...: field N of proc(5) is index N - 3), the first ``fields`` of them and
    the rest unsplit (-1: all). Split after the last ``)``: the name itself may
    hold spaces and parentheses."""
    return data[data.rfind(b")") + 1:].split(None, fields)


def stat_fields(pid: int | str) -> list[str] | None:
    """The fields of ``/proc/PID/stat`` after the command name (:func:`_after_name`);
    None when it cannot be read."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return [field.decode() for field in _after_name(f.read())]
    except OSError:
        return None


def pid_alive(pid: int) -> bool:
    """``pid`` exists and is not a zombie (a dead process its parent has not reaped)."""
    if pid <= 1:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by someone else
    fields = stat_fields(pid)
    if fields is None:
        return True  # no procfs (FreeBSD, macOS by default): kill(0) is all we know
    return not (fields and fields[0] in ("Z", "X"))


#: How long one scan of /proc for live process groups serves later questions
#: (see :func:`group_alive`): long enough for every stop probe of one scheduler
#: round, short enough that a waiting probe sees the group empty soon after.
GROUP_SCAN_TTL = 0.02


@dataclass
class _GroupScan:
    """The process groups with a live (not zombie) member, as one /proc scan found them."""

    began: float = -1.0
    live: frozenset[int] = frozenset()
    #: Groups with any member, zombies included.
    seen: frozenset[int] = frozenset()
    #: When the scan ended (monotonic).
    ended: float = -1.0


_last_scan = _GroupScan()
_scan_lock = threading.Lock()


#: What :func:`_group_scan` answers a caller whose group was signalled after the
#: last scan began, while that scan is still fresh: ask again later.
_LATER = _GroupScan()


def _scan_proc() -> tuple[set[int], set[int]] | None:
    """(groups with a live member, groups with any member) from one pass over
    ``/proc``; None without procfs. Bytes and raw descriptors: with 10,000
    processes a text-mode ``open`` per entry was most of a stop's time."""
    try:
        entries = os.listdir("/proc")
    except OSError:
        return None
    live, seen = set(), set()
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            fd = os.open(f"/proc/{entry}/stat", os.O_RDONLY)
        except OSError:
            continue
        try:
            data = os.read(fd, 1024)
        except OSError:
            continue
        finally:
            os.close(fd)
        fields = _after_name(data, 3)  # state, ppid, pgrp, the rest
        if len(fields) < 3 or not fields[2].isdigit():
            continue
        seen.add(int(fields[2]))
        if fields[0] not in (b"Z", b"X"):
            live.add(int(fields[2]))
    return live, seen


def _group_scan(since: float | None) -> _GroupScan | None:
    """A /proc scan of process groups that began at or after ``since``
    (monotonic; None: a new one), the last one while it is fresh; None without
    procfs. While the last scan is fresh, a caller it cannot serve (its group
    was signalled after the scan began) gets :data:`_LATER`: one scan per
    freshness period whatever the number of stops, which otherwise, signalled
    one after another, each wanted a scan of its own (411 scans of 6,000
    processes in a stop of 10,000)."""
    global _last_scan
    with _scan_lock:
        now = time.monotonic()
        # Fresh for GROUP_SCAN_TTL after it ended, or as long as it took (a scan
        # of 10,000 processes takes longer than the TTL).
        took = _last_scan.ended - _last_scan.began
        if since is not None and now - _last_scan.ended < max(GROUP_SCAN_TTL, took):
            return _last_scan if _last_scan.began >= since else _LATER
        scanned = _scan_proc()
        if scanned is None:
            return None
        live, seen = scanned
        _last_scan = _GroupScan(now, frozenset(live), frozenset(seen), time.monotonic())
        return _last_scan


def group_alive(pgid: int, *, since: float | None = None) -> bool:
    """A live (not zombie) process is still in process group ``pgid``.

    One ``killpg(0)`` answers the common case (the group is empty); only when it
    finds members is /proc read, since a zombie an unreaping parent keeps
    still counts as a member for the kernel but holds nothing (no port, no file).
    Stopping a thousand processes whose zombies linger (an init that reaps
    late) would read /proc once per group and poll round, quadratic in the
    number of processes: the scan is shared for :data:`GROUP_SCAN_TTL`
    (or as long as it took) by every caller whose group was already there when
    it began (``since``, monotonic: e.g. when the group was signalled; without
    it, a fresh scan); a group signalled later counts as alive until the next.
    A group no member of which was alive when a scan began cannot have gained
    one since (a zombie forks nothing)."""
    if pgid <= 1:
        return False
    signalled = True
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        signalled = False
    scan = _group_scan(since)
    if scan is None or scan is _LATER:
        return True  # not known yet: asked again, a later scan answers
    if pgid in scan.live:
        return True
    # The kernel just found members the scan did not see at all, not even as
    # zombies: a child forked while the scan listed /proc (its parent exited
    # before its own entry was read). Not gone: asked again, a later scan sees
    # it. (Only for a group we may signal: others' processes may be hidden from
    # /proc, hidepid=, and would never be seen.)
    return signalled and pgid not in scan.seen


@dataclass(frozen=True)
class Verdict:
    """What :func:`trusted_pid` concluded about one pid file.

    ``status`` is :data:`TRUSTED` (``pid`` is this service's live process),
    :data:`ABSENT` (no pid file, no pid in it, or its process is gone: not
    running, nothing suspicious) or :data:`REFUSED` (a live process procmgmt
    will not signal or count: ``reason`` says why).
    """

    path: str
    pid: int | None
    status: str
    reason: str = ""
    #: Who runs ``pid`` (a refused verdict says it; a trusted one needs not).
    owner: str = ""
    command: str = ""

    @property
    def trusted(self) -> bool:
        """The pid may be signalled and counts as the running service."""
        return self.status == TRUSTED

    @property
    def refused(self) -> bool:
        """A live pid was refused: report it."""
        return self.status == REFUSED

    @property
    def detail(self) -> str:
        """One line for ``status`` output."""
        if self.trusted:
            return f"pid {self.pid} from {self.path}"
        if self.refused and self.pid is None:
            return f"refused {self.path}: it {self.reason}"
        if self.refused:
            return (f"refused pid {self.pid} from {self.path}: {self.reason} "
                    f"(owner {self.owner}, command {self.command!r})")
        return self.reason

    def warning(self) -> str:
        """The warning logged when a pid is refused (the command line shows it as
        ``procmgmt: warning: ...``)."""
        what = f"pid {self.pid} {self.reason} (owner {self.owner}, command {self.command!r})" \
            if self.pid is not None else f"it {self.reason} (owner {self.owner})"
        return (f"not trusting pid file {self.path}: {what}; "
                "it is not signalled and the service counts as not running")


log = logging.getLogger(__name__)

_REPORTED: set[tuple[str, int | None, str]] = set()


def report(verdict: Verdict) -> Verdict:
    """Log ``verdict``'s warning once per pid file, pid and reason (status and
    stop probes ask many times). Returns ``verdict``."""
    if verdict.refused:
        key = (verdict.path, verdict.pid, verdict.reason)
        if key not in _REPORTED:
            _REPORTED.add(key)
            log.warning("%s", verdict.warning())
    return verdict


def expected_uid(user: str | None) -> int | None:
    """The uid a service's processes run as: its user's, or ours (the deploying
    user) when it has none or user changes are off. None: the user does not
    exist, so no process can be its own."""
    if not user:
        return os.geteuid()
    try:
        return pwd.getpwnam(user).pw_uid
    except KeyError:
        return None


def _user_name(uid: int | None) -> str:
    if uid is None:
        return "unknown"
    try:
        return f"{pwd.getpwuid(uid).pw_name} (uid {uid})"
    except KeyError:
        return f"uid {uid}"


def _proc_uid(pid: int) -> int | None:
    """Real uid of ``pid``: /proc/PID/status, else ``ps -o ruser=``."""
    try:
        with open(f"/proc/{pid}/status", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("Uid:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    if os.path.isdir("/proc/self"):
        return None
    try:
        out = subprocess.run(["ps", "-o", "ruser=", "-p", str(pid)], capture_output=True,
                             text=True, timeout=10, check=False).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return None
    if out.isdigit():
        return int(out)
    try:
        return pwd.getpwnam(out).pw_uid if out else None
    except KeyError:
        return None


def _environ(pid: int) -> list[bytes] | None:
    """The NUL-separated entries of /proc/PID/environ; None when unreadable."""
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            return f.read().split(b"\0")
    except OSError:
        return None


def _command(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            text = f.read(512).replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        text = ""
    if text:
        return text
    try:
        return subprocess.run(["ps", "-o", "args=", "-p", str(pid)], capture_output=True,
                              text=True, timeout=10, check=False).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return ""


def _parent(pid: int) -> int | None:
    fields = stat_fields(pid)
    try:
        return int(fields[1]) if fields is not None else None
    except (ValueError, IndexError):
        return None


#: (our pid, our parent's pid) -> our ancestors, see :func:`protected_pids`.
_ANCESTORS: dict[tuple[int, int], frozenset[int]] = {}


def protected_pids() -> frozenset[int]:
    """PIDs never to signal: 0, 1, procmgmt itself and every one of its ancestors
    (the shell, sudo, a CI runner: a pid file naming them would make root
    kill the session it runs in).

    Walked once per (pid, parent pid): a switch asks for every process it
    checks, and the chain only shrinks as ancestors exit (a pid kept after its
    process died errs on the side of not signalling); a new parent (we were
    reparented, or forked) walks it anew.
    """
    key = (os.getpid(), os.getppid())
    known = _ANCESTORS.get(key)
    if known is not None:
        return known
    pids = {0, 1, key[0]}
    cur: int | None = key[1]
    while cur is not None and cur > 1 and cur not in pids:
        pids.add(cur)
        cur = _parent(cur)
    _ANCESTORS.clear()
    _ANCESTORS[key] = frozenset(pids)
    return _ANCESTORS[key]


def _child_owned(pid: int, uids: set[int | None]) -> bool:
    """A child of ``pid`` runs as one of ``uids``: ``su`` (the fallback where
    there is no ``setpriv``) stays as a root parent of the process it starts."""
    for entry in os.listdir("/proc") if os.path.isdir("/proc/self") else ():
        if entry.isdigit() and _parent(int(entry)) == pid and _proc_uid(int(entry)) in uids:
            return True
    return False


def _writers(path: str, st: os.stat_result) -> set[int] | None:
    """Non-root uids that could have written the pid in ``path``: its owner and
    its directory's owner (who can replace it). None: anyone could have (the
    file or its directory is group/other-writable; in a sticky shared
    directory like /tmp anyone could have created it first)."""
    if st.st_mode & 0o022:
        return None
    try:
        dst = os.stat(os.path.dirname(path) or ".")
    except OSError:
        return None
    if dst.st_mode & 0o022:
        return None
    return {uid for uid in (st.st_uid, dst.st_uid) if uid != 0}


_WORD_END = re.compile(rb"[\0\s;\"']")


def cmdline_marker(pid: int, want: str) -> str | None:
    """The process name of a process whose command line (or the title it rewrote
    it to) holds ``PROCMGMT_DEPLOYMENT=<want>`` as a whole word; None if it does not."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            raw = f.read()
    except OSError:
        return None
    needle = f"{MARKER_DEPLOYMENT}={want}".encode()
    at = raw.find(needle)
    while at >= 0:
        end = at + len(needle)
        if (at == 0 or _WORD_END.match(raw, at - 1)) and \
                (end == len(raw) or _WORD_END.match(raw, end)):
            break
        at = raw.find(needle, at + 1)
    if at < 0:
        return None
    name = raw.find(f"{MARKER_PROCESS}=".encode())
    if name < 0:
        return "?"
    value = raw[name + len(MARKER_PROCESS) + 1:]
    stop = _WORD_END.search(value)
    return (value[:stop.start()] if stop else value).decode(errors="replace") or "?"


def _marker(pid: int, marker: str) -> str | None:
    """None when ``pid`` carries ``PROCMGMT_DEPLOYMENT=<marker>``; "unknown" when
    its environment cannot be read or was overwritten (daemons such as nginx,
    redis and PostgreSQL write their process title over it); otherwise why not."""
    entries = _environ(pid)
    if entries is None:
        return "unknown"
    want = f"{MARKER_DEPLOYMENT}={marker}".encode()
    if want in entries:
        return None
    if not any(b"=" in e and e.split(b"=", 1)[0].replace(b"_", b"").isalnum() for e in entries):
        return "unknown"
    for e in entries:
        if e.startswith(MARKER_DEPLOYMENT.encode() + b"="):
            return f"belongs to another deployment ({e.decode(errors='replace')})"
    if cmdline_marker(pid, marker) is not None:
        return None  # wrote its title over its environment, marker passed on its command line
    return f"does not carry this deployment's marker {MARKER_DEPLOYMENT}"


def _starting_as_root(pid: int, marker: str, process: str | None) -> bool:
    """``pid`` runs as root and carries both markers of this deployment's process
    ``process``: its own start, between the fork the pid file names and the exec
    that switches to the service's user (``setpriv``, ``su``). Only procmgmt
    starts root processes with these markers, each for that one process."""
    if not process:
        return False
    entries = _environ(pid)
    return entries is not None and f"{MARKER_DEPLOYMENT}={marker}".encode() in entries \
        and f"{MARKER_PROCESS}={process}".encode() in entries


def check_pid(path: str, pid: int, uid: int | None, marker: str,
              process: str | None = None) -> Verdict:
    """The verdict on ``pid``, read from ``path``, for the service ``process`` whose
    processes run as ``uid`` (see :func:`expected_uid`) in deployment ``marker``.

    Trusted only when the pid is alive and none of these holds:

    * it is PID 1, procmgmt or one of procmgmt's ancestors;
    * it belongs to a user who could not have written it there: when a
      non-root user controls the pid file (owns it or its directory), only
      that user's processes (normally the service's own); when only root
      does, any (root recorded it: a daemon that switches user itself, such
      as mariadbd, is still found); when anyone could have written it, only
      processes of the service's user. A root process whose child runs as
      an allowed user counts as that user's (``su`` keeps such a parent), and
      so does one still on its way to that user that carries this very
      process's markers (:func:`_starting_as_root`: a pid file is written at
      the fork, before the exec chain switches user; refused, a stop in that
      moment left the service running for good);
    * its environment lacks this deployment's marker. A process that wrote its
      title over its environment (nginx, redis, PostgreSQL) cannot show the
      marker; it is trusted on the owner rule alone unless the pid file is
      open to anyone.
    """
    protected = pid in protected_pids()
    if not protected and not pid_alive(pid):
        return Verdict(path, pid, ABSENT, f"pid {pid} from {path} is gone")
    owner_uid = _proc_uid(pid)

    def refuse(reason: str) -> Verdict:
        return Verdict(path, pid, REFUSED, reason, _user_name(owner_uid), _command(pid))

    if protected:
        return refuse("is PID 1, procmgmt itself or one of its ancestors")
    try:
        st = os.lstat(path)
    except OSError:
        return Verdict(path, pid, ABSENT, f"{path} is gone")
    writers = _writers(path, st)
    if writers is None:
        allowed: set[int | None] | None = {uid}
    elif writers:
        allowed = {uid} if uid in writers else set(writers) if len(writers) == 1 else set()
    else:
        allowed = None  # only root could have written it
    if uid is None and allowed is not None and allowed == {None}:
        return refuse("belongs to a service whose user does not exist")
    if allowed is not None and owner_uid not in allowed \
            and not (owner_uid == 0 and (_child_owned(pid, allowed)
                                         or _starting_as_root(pid, marker, process))):
        names = ", ".join(sorted(_user_name(u) for u in allowed)) or "nobody"
        return refuse(f"belongs to {_user_name(owner_uid)}, not to {names}")
    why = _marker(pid, marker)
    if why == "unknown":
        if writers is None:
            return refuse(f"does not show this deployment's marker {MARKER_DEPLOYMENT} "
                          "and the pid file is writable by others")
    elif why is not None:
        return refuse(why)
    return Verdict(path, pid, TRUSTED)


def trusted_pid(path: str, expected: int | None, marker: str, *,
                whole_line: bool = False, process: str | None = None) -> Verdict:
    """The verdict on the pid file ``path`` (read as :func:`read_pid_file`
    does): ABSENT when there is no live pid in it, else :func:`check_pid`
    (for the process named ``process``). A pid file that is a symlink or not
    a regular file is refused."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return Verdict(path, None, ABSENT, f"no pid file {path}")
    except OSError as exc:
        return Verdict(path, None, ABSENT, f"{path}: {exc.strerror}")
    if stat.S_ISLNK(st.st_mode) or not stat.S_ISREG(st.st_mode):
        kind = "a symlink" if stat.S_ISLNK(st.st_mode) else "not a regular file"
        return Verdict(path, None, REFUSED, f"is {kind}",
                       _user_name(st.st_uid), "")
    pid = read_pid_file(path, whole_line=whole_line)
    if pid is None:
        return Verdict(path, None, ABSENT, f"no pid in {path}")
    return check_pid(path, pid, expected, marker, process)


def started_at(pid: int) -> float | None:
    """When ``pid`` started, in seconds since the epoch: the boot time (``btime`` of
    ``/proc/stat``) plus its start time (``/proc/PID/stat`` field 22, clock ticks
    after boot). The same value on every call, unlike a computed uptime. None
    without procfs or when the process is gone."""
    fields = stat_fields(pid)
    if fields is None:
        return None
    try:
        with open("/proc/stat", encoding="ascii", errors="replace") as f:
            btime = next(int(line.split()[1]) for line in f if line.startswith("btime "))
        return btime + int(fields[19]) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        return None
