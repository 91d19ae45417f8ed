"""Conventions every service constructor of the catalogue follows.

- The instance name is ``<kind><instance_suffix>`` unless given; every path
  that could conflict between instances derives from it.
- Paths live under the shared settings directories: data under
  ``<state_dir>/db/<instance>`` or ``<lib_dir>/<instance>``, sockets under
  ``<runtime_dir>/<instance>``, logs under ``<log_dir>/<instance>``, caches
  and temp paths under ``<cache_dir>/<instance>``.
- As root (user changes allowed) each instance runs as its own user and
  group named after the instance; unprivileged, it runs as the deploying
  user and privileged-only directives are left out.
- ``initialize`` is idempotent: it creates directories every time (cheap)
  and runs one-time initialization only when its marker is missing.
"""

from __future__ import annotations

import os
import shlex
import shutil
from dataclasses import dataclass

from procmgmt.model.credentials import Credentials, Group, User
from procmgmt.settings import Settings


def instance_name(kind: str, instance_suffix: str = "", name: str | None = None) -> str:
    """``name`` if given, else ``kind + instance_suffix``."""
    return name if name else f"{kind}{instance_suffix}"


@dataclass(frozen=True)
class InstanceDirs:
    """The per-instance directories of one service instance."""

    state: str
    data: str
    runtime: str
    log: str
    cache: str
    lib: str


def instance_dirs(settings: Settings, name: str) -> InstanceDirs:
    """Per-instance directories derived from the shared settings."""
    return InstanceDirs(
        state=os.path.join(settings.state_dir, name),
        data=os.path.join(settings.state_dir, "db", name),
        runtime=os.path.join(settings.runtime_dir, name),
        log=os.path.join(settings.log_dir, name),
        cache=os.path.join(settings.cache_dir, name),
        lib=os.path.join(settings.lib_dir, name),
    )


def service_user(settings: Settings, name: str) -> str | None:
    """The instance's own user as root; None unprivileged (runs as the deployer)."""
    return None if settings.force_disable_user_change else name


def service_credentials(settings: Settings, name: str, home: str | None = None,
                        description: str | None = None) -> Credentials:
    """A user and group named after the instance (ignored when unprivileged).

    ``home`` becomes the user's home directory; unprivileged, a
    ``create_home_only`` user still makes sure that directory exists.
    """
    user = User(group=name, description=description or f"procmgmt service {name}",
                home_dir=home or "/dev/null", shell="/usr/sbin/nologin",
                create_home=home is not None)
    return Credentials(groups={name: Group()}, users={name: user})


def mkdirs(*paths: str, owner: str | None = None, mode: str = "0750") -> str:
    """Shell lines creating ``paths`` (mode 0750 by default), owned by ``owner`` when set."""
    quoted = " ".join(shlex.quote(p) for p in paths)
    lines = [f"mkdir -p {quoted}", f"chmod {mode} {quoted}"]
    if owner:
        lines.append(f"chown {shlex.quote(owner)}:{shlex.quote(owner)} {quoted}")
    return "\n".join(lines)


def as_user(owner: str | None, command: str) -> str:
    """``command`` run as ``owner`` from a root initialize step (unchanged when None).

    ``setpriv`` (util-linux) only changes the credentials. ``su`` is the
    fallback where there is none: it opens a PAM session, and with
    ``pam_systemd`` (Debian's common-session under systemd) that session
    starts the user's ``user@UID.service`` manager, whose processes outlive
    the command by logind's stop delay and keep ``userdel`` from deleting the
    account on undeploy.
    """
    if not owner:
        return command
    user, cmd = shlex.quote(owner), shlex.quote(command)
    return (f"if command -v setpriv >/dev/null 2>&1; then\n"
            f"setpriv --reuid={user} --regid=\"$(id -g {user})\" --init-groups -- "
            f"/bin/sh -c {cmd}\n"
            f"else\nsu -s /bin/sh -c {cmd} {user}\nfi")


def once(marker: str, command: str) -> str:
    """Run ``command`` only when ``marker`` does not exist yet (idempotent initialize)."""
    return f"if [ ! -e {shlex.quote(marker)} ]; then\n{command}\nfi"


def find_program(*candidates: str) -> str:
    """The first existing absolute path (or a name on PATH) among ``candidates``.

    Falls back to the first candidate, so models still evaluate (and
    validate) on a machine without the program.
    """
    for c in candidates:
        if os.path.isabs(c) and os.access(c, os.X_OK):
            return c
        if not os.path.isabs(c):
            found = shutil.which(c)
            if found:
                return found
    return candidates[0]


def write_file(path: str, content: str, mode: str = "0640", owner: str | None = None) -> str:
    """Shell lines (re)writing ``path`` with ``content`` through a temp file and ``mv``.

    Configuration generated from the model is rewritten by every start, so
    the file on disk always belongs to the generation being started, and a
    reader never sees half a file. ``printf '%s'`` with one single-quoted
    word keeps the content byte for byte (no here-document delimiter can
    clash with it, and ``$`` or backquotes stay literal; they are written as
    ``\\$`` outside the quotes, which means the same and keeps shellcheck from
    taking them for forgotten expansions). The steps form one
    ``&&`` list: ``initialize`` runs where ``set -e`` has no effect, so a failed
    write must fail the snippet by its exit status.
    """
    tmp = f"{path}.tmp"
    word = shlex.quote(content).replace("$", "'\\$'").replace("`", "'\\`'")
    steps = [f"printf '%s' {word} > {shlex.quote(tmp)}",
             f"chmod {mode} {shlex.quote(tmp)}"]
    if owner:
        steps.append(f"chown {shlex.quote(owner)}:{shlex.quote(owner)} {shlex.quote(tmp)}")
    steps.append(f"mv -f {shlex.quote(tmp)} {shlex.quote(path)}")
    return " &&\n".join(steps)
