"""POSIX shell quoting shared by every backend that writes shell scripts."""

from __future__ import annotations

import shlex
from collections.abc import Iterable


def quote(word: str) -> str:
    """One shell word, single-quoted unless it is plainly safe."""
    return shlex.quote(word)


def command_line(argv: Iterable[str]) -> str:
    """A command line whose words reach the program exactly as given."""
    return " ".join(quote(a) for a in argv)


def export_lines(environment: dict[str, str]) -> list[str]:
    """``NAME='value'; export NAME`` lines, sorted by name (stable output)."""
    return [f"{k}={quote(v)}; export {k}" for k, v in sorted(environment.items())]


#: ``procmgmt_pid_owned PID UID``: true when PID's real user is the numeric
#: ``UID``; sets ``procmgmt_owner``. Generated scripts that run as root signal
#: a pid from a pid file only after this check when the process runs as a
#: user of its own: that user can write the pid file, and must not be able to
#: choose what root signals (the rule of :func:`procmgmt.pids.trusted_pid`).
#: /proc/PID/status where there is one (read by the shell: no fork), else
#: ``ps -o ruid=``.
PID_OWNED_SH = r"""# procmgmt_pid_owned PID UID: PID's real user is UID; sets procmgmt_owner.
procmgmt_pid_owned() {
    procmgmt_owner=
    if [ -r "/proc/$1/status" ]; then
        while read -r procmgmt_key procmgmt_value procmgmt_rest; do
            if [ "$procmgmt_key" = Uid: ]; then
                procmgmt_owner=$procmgmt_value
                break
            fi
        done <"/proc/$1/status"
        : "$procmgmt_rest"
    else
        procmgmt_owner=$(ps -o ruid= -p "$1" 2>/dev/null | tr -d ' ')
    fi
    [ -n "$procmgmt_owner" ] && [ "$procmgmt_owner" = "$2" ]
}
"""


#: ``procmgmt_make_piddir DIR USER``: the process's own pid directory, created
#: again when a reboot emptied the runtime dir (procmgmt creates it before a
#: switch starts the process; a boot or a supervisor restart does not go
#: through procmgmt): 0755 and owned by USER (empty: the caller), in a
#: parent nobody else can write. A symlink in its place or as its parent is
#: refused (:meth:`procmgmt.settings.Settings.pid_dir`).
MAKE_PIDDIR_SH = r"""# procmgmt_make_piddir DIR USER: the own pid directory DIR, owned by USER.
procmgmt_make_piddir() {
    if [ -L "$1" ] || [ -L "${1%/*}" ]; then
        echo "$procmgmt_name: $1 or its parent is a symlink; refusing it" >&2
        return 1
    fi
    [ ! -d "$1" ] || return 0
    mkdir -p "$1" && chmod 0755 "${1%/*}" "$1" || return 1
    if [ -n "$2" ]; then
        chown "$2:$(id -g "$2")" "$1" || return 1
    fi
}
"""
