"""``procmgmt chainload-user USER -- CMD [ARGS...]``: drop to USER, then exec CMD.

nix-processmgmt's ``nixproc-chainload-user`` (a small C program) lets a
command that a manager starts as root first do root-only setup and then
become the service user without a shell in between. This is the same:
look the user up, ``initgroups`` (the original skipped the supplementary
groups and kept root's), ``setgid``, ``setuid``, ``execvp``. The
environment is passed on unchanged (as ``setpriv`` does); the process keeps
its PID, so a supervisor still tracks the real program.

Errors are one line each: an unknown user, or a non-root caller asking for
another user, exits 2; a command that cannot be executed exits 126 (found
but not executable) or 127 (not found), as shells do.
"""

from __future__ import annotations

import argparse
import os
import pwd

from procmgmt.cli.common import Subcommands
from procmgmt.errors import ProcmgmtError, UsageError
from procmgmt.settings import Settings


class ExecError(ProcmgmtError):
    """The command could not be executed (exit status as a shell would give)."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def lookup(user: str) -> pwd.struct_passwd:
    """The passwd entry of ``user`` (a name, or a number for a uid)."""
    try:
        return pwd.getpwnam(user)
    except KeyError:
        pass
    if user.isdigit():
        try:
            return pwd.getpwuid(int(user))
        except KeyError:
            pass
    raise UsageError(f"chainload-user: unknown user {user!r}")


def drop_to(pw: pwd.struct_passwd) -> None:
    """Become ``pw``'s user: supplementary groups, then gid, then uid (in this order:
    after setuid the process may no longer change its groups)."""
    if os.geteuid() != 0:
        if pw.pw_uid == os.geteuid() and pw.pw_uid == os.getuid():
            return  # already that user: nothing to drop
        raise UsageError(f"chainload-user: only root can switch to user {pw.pw_name!r} "
                         f"(running as uid {os.geteuid()})")
    try:
        os.initgroups(pw.pw_name, pw.pw_gid)
        os.setgid(pw.pw_gid)
        os.setuid(pw.pw_uid)
    except OSError as exc:
        raise ProcmgmtError(f"chainload-user: cannot change to user {pw.pw_name!r}: "
                            f"{exc.strerror or exc}") from None


def exec_command(argv: list[str]) -> None:
    """Replace this process with ``argv`` (searched in PATH); returns only by raising."""
    try:
        os.execvp(argv[0], argv)
    except FileNotFoundError:
        raise ExecError(f"chainload-user: {argv[0]}: command not found", 127) from None
    except OSError as exc:
        raise ExecError(f"chainload-user: cannot execute {argv[0]}: {exc.strerror or exc}",
                        126) from None


def _cfg_chainload(p: argparse.ArgumentParser) -> None:
    p.add_argument("user", metavar="USER", help="user name (or uid) to become")
    p.add_argument("argv", metavar="CMD", nargs=argparse.REMAINDER,
                   help="the command and its arguments (after --)")


def cmd_chainload_user(args: argparse.Namespace, settings: Settings) -> int:
    argv = list(args.argv)
    if argv and argv[0] == "--":
        argv = argv[1:]
    if not argv:
        raise UsageError("chainload-user: no command given: procmgmt chainload-user USER "
                         "-- CMD [ARGS...]")
    pw = lookup(args.user)
    drop_to(pw)
    exec_command(argv)
    return 127  # not reached: exec_command replaces the process or raises


def register(subparsers: Subcommands) -> None:
    """Register chainload-user."""
    subparsers.add("chainload-user",
        "become USER (initgroups, setgid, setuid) and exec CMD: "
        "root-run setup followed by a privilege drop",
        cmd_chainload_user, _cfg_chainload)
