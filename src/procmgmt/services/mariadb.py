"""MariaDB: ``mariadb-install-db`` once, then ``mariadbd`` in the foreground.

::

    from procmgmt import Instance
    from procmgmt.services.mariadb import mariadb, mariadb_metadata

    def processes(settings):
        make = mariadb(settings)
        return {"mariadb": Instance(make(port=3306, options={"max_connections": 50}),
                                    **mariadb_metadata(settings, port=3306))}

Paths (instance ``mariadb``): data ``<state_dir>/db/mariadb``, the socket
``<runtime_dir>/mariadb/mysqld.sock`` (``mariadb --no-defaults -S <socket>
-u root``), the server's own pid file ``<runtime_dir>/mariadb/mariadbd.pid``,
its temporary directory ``<runtime_dir>/mariadb/tmp`` (its own, like
MariaDB's default /tmp a tmpfs on most systems) and the install log
``<log_dir>/mariadb/install-db.log``. The first start initializes
``<state_dir>/db/mariadb.init`` and renames it into place only when
``mariadb-install-db`` succeeded, so a failed first start is retried from
scratch by the next one.

Every command gets ``--no-defaults`` first: without it the server also
reads /etc/mysql and ~/.my.cnf, and a system-wide setting (a socket path,
a data dir) would leak into the instance. ``mariadbd`` cannot daemonize
itself (``mysqld_safe`` is a separate supervisor script, not a daemon
mode), so this constructor has a foreground process only; process managers
that want daemons (sysvinit, BSD rc) daemonize it themselves.

As root the server is started as root and drops to the instance user
itself (``--user=``), which is how mariadbd is meant to run; it refuses to
run as root without ``--user``, so a root deployment with user changes
disabled gets ``--user=root``. Unprivileged, no ``--user`` is given.
"""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from procmgmt.model.process import Process
from procmgmt.readiness import TCP, Command, Readiness
from procmgmt.services import _common
from procmgmt.services._snippets import chain, logged, make_dirs, once
from procmgmt.settings import Settings

KIND = "mariadb"

OptionValue = str | int | float | bool

_KEY_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*$")


def render_options(options: Mapping[str, OptionValue]) -> list[str]:
    """``--key=value`` arguments; bools become ``ON``/``OFF`` (mariadbd accepts both forms).

    The values are argv words, never parsed by a shell or an option file,
    so they need no quoting; only the keys are checked.
    """
    args = []
    for key, value in options.items():
        if not _KEY_RE.match(key):
            raise ValueError(f"invalid mariadbd option name {key!r}")
        if isinstance(value, bool):
            text = "ON" if value else "OFF"
        elif isinstance(value, (str, int, float)):
            text = str(value)
        else:
            raise TypeError(f"unsupported mariadbd option value {value!r}")
        if "\0" in text or "\n" in text:
            raise ValueError(f"mariadbd option {key} contains a newline or NUL")
        args.append(f"--{key}={text}")
    return args


def run_as(settings: Settings, name: str) -> str | None:
    """The ``--user`` mariadbd needs: the instance user as root, root itself when
    root deploys with user changes disabled, else nothing (an unprivileged user)."""
    user = _common.service_user(settings, name)
    if user:
        return user
    return "root" if settings.calling_user == "root" else None


def mariadb_metadata(settings: Settings, port: int, instance_suffix: str = "",
                     instance_name: str | None = None) -> dict[str, Any]:
    """Instance metadata: ``port``, ``socket`` (checked against the 107-byte limit)
    and ``data_dir`` (checked for sharing between instances)."""
    name = _common.instance_name(KIND, instance_suffix, instance_name)
    dirs = _common.instance_dirs(settings, name)
    return {"port": port, "socket": os.path.join(dirs.runtime, "mysqld.sock"),
            "data_dir": dirs.data}


def mariadb(settings: Settings) -> Callable[..., Process]:
    """Constructor: ``mariadb(settings)(port=..., ...)`` is one MariaDB server."""

    def instance(
        port: int = 3306,
        instance_suffix: str = "",
        instance_name: str | None = None,
        listen_tcp: bool = True,
        options: Mapping[str, OptionValue] | None = None,
        dependencies: Sequence[Process] = (),
        readiness: Readiness | None = None,
        program: str | None = None,
    ) -> Process:
        """One MariaDB server with a unix socket and, if ``listen_tcp``, 127.0.0.1:``port``.

        ``options`` become ``--key=value`` arguments of both
        ``mariadb-install-db`` and ``mariadbd`` (InnoDB sizes must agree),
        e.g. ``{"innodb_buffer_pool_size": "32M"}``.
        """
        name = _common.instance_name(KIND, instance_suffix, instance_name)
        dirs = _common.instance_dirs(settings, name)
        owner = _common.service_user(settings, name)
        user_arg = run_as(settings, name)
        server = program or _common.find_program("mariadbd", "/usr/sbin/mariadbd")
        install = _common.find_program("mariadb-install-db", "/usr/bin/mariadb-install-db")
        sock = os.path.join(dirs.runtime, "mysqld.sock")
        # Each instance has its own temporary directory: two servers (or two
        # mariadb-install-db runs) sharing /tmp collide on their temporary tables.
        tmp = os.path.join(dirs.runtime, "tmp")
        extra = render_options(options or {})
        user_args = [f"--user={user_arg}"] if user_arg else []
        network = ["--port=" + str(port), "--bind-address=127.0.0.1"] if listen_tcp \
            else ["--skip-networking"]
        args = ["--no-defaults", f"--datadir={dirs.data}", f"--socket={sock}", f"--tmpdir={tmp}",
                f"--pid-file={os.path.join(dirs.runtime, 'mariadbd.pid')}", *network,
                "--skip-name-resolve", *user_args, *extra]
        # The initialization writes into a sibling staging directory that is renamed into
        # place only once mariadb-install-db succeeded: a failed or interrupted run would
        # otherwise leave a half-made ``mysql`` schema behind, which every later start
        # takes for a finished one (a server without its root account).
        staging = dirs.data + ".init"
        install_cmd = " ".join(shlex.quote(a) for a in [
            install, "--no-defaults", f"--datadir={staging}", f"--tmpdir={tmp}",
            "--auth-root-authentication-method=normal", "--skip-test-db", *user_args, *extra])
        initialize = chain(
            make_dirs(dirs.runtime, dirs.log, owner=owner, mode="0755"),
            make_dirs(tmp, owner=owner, mode="0700"),
            once(os.path.join(dirs.data, "mysql"), chain(
                f"rm -rf {shlex.quote(staging)}",
                make_dirs(staging, owner=owner, mode="0750"),
                logged(install_cmd, os.path.join(dirs.log, "install-db.log")),
                # Only an empty data directory (made by an older version) is replaced.
                f"{{ [ ! -e {shlex.quote(dirs.data)} ] || rmdir {shlex.quote(dirs.data)}; }}",
                f"mv {shlex.quote(staging)} {shlex.quote(dirs.data)}")),
            make_dirs(dirs.data, owner=owner, mode="0750"),
        )
        if readiness is None:
            admin = _common.find_program("mariadb-admin", "/usr/bin/mariadb-admin")
            # "ping" exits 0 as soon as the server answers, even with access denied.
            readiness = (Command(command=[admin, "--no-defaults", "-S", sock, "-u", "root",
                                          "--connect-timeout=1", "ping"])
                         if os.path.isabs(admin) and os.access(admin, os.X_OK)
                         else TCP(port=port) if listen_tcp else None)
        return Process(
            name=name,
            instance_name=name,
            description=f"MariaDB server {name}",
            initialize=initialize,
            foreground_process=server,
            foreground_process_args=args,
            daemon=None,
            credentials=_common.service_credentials(settings, name,
                                                    description=f"MariaDB server {name}"),
            dependencies=dependencies,
            readiness=readiness,
            # SIGTERM is mariadbd's normal shutdown (as ``mariadb-admin shutdown``):
            # connections are closed, InnoDB flushes and the server exits cleanly
            # (MariaDB docs, "mariadbd: Signals"; systemd's mariadb.service sends it).
            stop_signal="TERM",
        )

    return instance
