"""nginx as a managed process: a static site and host- or path-based reverse proxies.

Every constructor is two-level (``nginx(settings)(port=..., ...)``) and every
path derives from the instance name (``nginx``, ``nginx2``...):

- prefix ``<state_dir>/<instance>`` (``-p``), holding ``nginx.conf`` and, for
  the static site, ``html/``;
- pid file ``<runtime_dir>/<instance>/nginx.pid``;
- logs under ``<log_dir>/<instance>`` (``-e`` points the early error log there,
  before the configuration is read: Debian's build would otherwise use stderr);
- all five ``*_temp_path`` directories under ``<cache_dir>/<instance>``: a
  missing one makes nginx fall back to its compiled-in /var/lib/nginx path,
  which an unprivileged user cannot write.

The configuration is Python data rendered by :func:`render_config` (directive
tuples, blocks as a trailing list) and written by ``initialize`` at every
start, so the file on disk always matches the generation being started.

nginx can run in both modes: daemon (it forks and writes its pid file) or
foreground (``-g 'daemon off;'``); the process manager picks. The master
process stays with the deployer (root: it may bind low ports); when user
changes are allowed the workers run as the instance's own user
(``user <instance> <instance>;``). Unprivileged, the ``user`` directive is left
out, except when the deployer *is* root with user changes disabled: nginx's
compiled-in default would then move the workers to ``nobody``, who cannot read
a private state dir, so the workers are kept as the deployer (the catalogue's
rule: unprivileged, an instance runs as the deploying user).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from procmgmt.model.process import Instance, Process
from procmgmt.readiness import Readiness
from procmgmt.services._common import (
    CONFIG_HEADER,
    GRACEFUL_STOP_SECONDS,
    config_token,
    find_program,
    instance_dirs,
    instance_name,
    once,
    service_credentials,
    service_user,
    split_directive,
    tcp_readiness,
    write_file,
)
from procmgmt.services._snippets import chain, make_dirs
from procmgmt.settings import Settings
from procmgmt.validate import deployment_marker

#: A directive ``("listen", "127.0.0.1:8080")`` or a block ``("location", "/", [...])``.
Node = tuple[Any, ...]

#: The five temp paths nginx needs writable (each falls back to /var/lib/nginx).
TEMP_PATHS = ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
#: Characters an unquoted nginx token may hold (anything else is double-quoted).
_SAFE = re.compile(r"^[A-Za-z0-9_./:@=+,*%$~^!?&|\[\]-]+$")


def quote(value: Any) -> str:
    """One nginx token: ints and on/off as they are, strings double-quoted when needed.

    Inside double quotes nginx unescapes ``\\"`` and ``\\\\``; variables (``$host``)
    are still expanded, as they are in bare tokens.
    """
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, int | float):
        return str(value)
    if not isinstance(value, str):
        raise TypeError(f"nginx value {value!r} is a {type(value).__name__}, "
                        "expected str, int, float or bool")
    return config_token(value, _SAFE)


def render_config(nodes: Sequence[Node], indent: int = 0) -> str:
    """nginx configuration text from directive tuples.

    ``("worker_processes", 1)`` renders ``worker_processes 1;``; a tuple whose
    last element is a list is a block: ``("server", [("listen", 80)])``.
    """
    pad = "    " * indent
    out: list[str] = []
    for node in nodes:
        name, rest, body = split_directive(node, "nginx", _NAME)
        if body is not None:
            head = " ".join([name, *(quote(a) for a in rest)])
            out.append(f"{pad}{head} {{")
            out.append(render_config(body, indent + 1).rstrip("\n"))
            out.append(f"{pad}}}")
        else:
            out.append(pad + " ".join([name, *(quote(a) for a in rest)]) + ";")
    return "\n".join(line for line in out if line) + "\n"


def nginx_program() -> str:
    """The nginx executable (Debian's /usr/sbin/nginx, else from PATH)."""
    return find_program("/usr/sbin/nginx", "nginx")


def marker_directives(settings: Settings, name: str) -> str:
    """``env`` directives giving nginx the deployment marker, for ``-g``.

    nginx removes every inherited environment variable but ``TZ`` (unless an
    ``env`` directive keeps it), and its process title overwrites the memory
    ``/proc/<pid>/environ`` shows, so the marker variables procmgmt sets are
    invisible in nginx's processes. ``env NAME=value`` sets them inside
    nginx; given with ``-g`` they are also in the command line, which the
    master's title repeats, and ``procmgmt doctor`` reads them there.
    """
    return " ".join(f"env {quote(f'{key}={value}')};"
                    for key, value in deployment_marker(settings, name).items())


def conf_file(settings: Settings, name: str) -> str:
    """Where an instance's generated nginx.conf lives."""
    return os.path.join(instance_dirs(settings, name).state, "nginx.conf")


def pid_file(settings: Settings, name: str) -> str:
    """An instance's pid file."""
    return os.path.join(instance_dirs(settings, name).runtime, "nginx.pid")


def nginx(settings: Settings) -> Callable[..., Process]:
    """nginx with a given ``http`` block body (servers, upstreams)."""

    def instance(
        *,
        http: Sequence[Node],
        port: int | None = None,
        instance_suffix: str = "",
        instance_name: str | None = None,
        worker_processes: int = 1,
        worker_connections: int = 1024,
        main: Sequence[Node] = (),
        dependencies: Sequence[Process] = (),
        extra_initialize: str = "",
        readiness: Readiness | None = None,
        bind: str = "127.0.0.1",
        description: str | None = None,
    ) -> Process:
        name = _name(instance_suffix, instance_name)
        return _process(settings, name, http=http, port=port, bind=bind,
                        worker_processes=worker_processes,
                        worker_connections=worker_connections, main=main,
                        dependencies=dependencies, extra_initialize=extra_initialize,
                        readiness=readiness,
                        description=description or f"nginx {name}")

    return instance


def simple_webapp_nginx(settings: Settings) -> Callable[..., Process]:
    """nginx serving a static document root (``<state_dir>/<instance>/html`` by default).

    ``index_html`` is written once as ``index.html`` when the root has none, so
    content put there later survives restarts.
    """

    def instance(
        *,
        port: int,
        instance_suffix: str = "",
        instance_name: str | None = None,
        document_root: str | None = None,
        index_html: str | None = None,
        server_name: str = "localhost",
        bind: str = "127.0.0.1",
        dependencies: Sequence[Process] = (),
        worker_connections: int = 1024,
    ) -> Process:
        name = _name(instance_suffix, instance_name)
        root = document_root or os.path.join(instance_dirs(settings, name).state, "html")
        owner = service_user(settings, name)
        page = index_html if index_html is not None else (
            f"<!DOCTYPE html>\n<html><body><p>nginx instance {name}</p></body></html>\n")
        index = os.path.join(root, "index.html")
        init = chain(make_dirs(root, owner=owner, mode="0755"),
                     once(index, write_file(index, page, mode="0644", owner=owner)))
        http: list[Node] = [
            ("server", [
                ("listen", f"{bind}:{port}"),
                ("server_name", server_name),
                ("root", root),
                ("index", "index.html"),
                ("location", "/", [("try_files", "$uri", "$uri/", "=404")]),
            ]),
        ]
        return _process(settings, name, http=http, port=port, bind=bind,
                        worker_processes=1, worker_connections=worker_connections, main=(),
                        dependencies=dependencies, extra_initialize=init, readiness=None,
                        description=f"nginx static site {name}")

    return instance


def reverse_proxy_host_based(settings: Settings) -> Callable[..., Process]:
    """nginx proxying by ``Host``: one upstream and virtual host per webapp instance.

    Each webapp :class:`Instance` needs ``port`` and ``dns_name`` metadata (and
    may give ``host``, default 127.0.0.1); its process becomes a dependency, so
    nginx starts after the webapps it forwards to. Any other host name reaches
    the default server, which answers 404.
    """

    def instance(
        *,
        port: int,
        webapps: Sequence[Instance],
        instance_suffix: str = "",
        instance_name: str | None = None,
        bind: str = "127.0.0.1",
        worker_connections: int = 1024,
        extra_dependencies: Sequence[Process] = (),
    ) -> Process:
        name = _name(instance_suffix, instance_name)
        http: list[Node] = []
        for webapp in webapps:
            upstream = _upstream_name(webapp)
            dns_name = webapp.get("dns_name")
            if not dns_name:
                raise ValueError(f"webapp {upstream}: host-based proxying needs a "
                                 "'dns_name' in the instance metadata")
            http.append(("upstream", upstream, [("server", _target(webapp))]))
            http.append(("server", [
                ("listen", f"{bind}:{port}"),
                ("server_name", str(dns_name)),
                ("location", "/", _proxy_location(upstream, "")),
            ]))
        http.append(("server", [
            ("listen", f"{bind}:{port}", "default_server"),
            ("server_name", "_"),
            ("location", "/", [("return", 404)]),
        ]))
        return _process(settings, name, http=http, port=port, bind=bind, worker_processes=1,
                        worker_connections=worker_connections, main=(),
                        dependencies=[*(w.process for w in webapps), *extra_dependencies],
                        extra_initialize="", readiness=None,
                        description=f"nginx reverse proxy (by host) {name}")

    return instance


def reverse_proxy_path_based(settings: Settings) -> Callable[..., Process]:
    """nginx proxying by URL path: ``/<prefix>/...`` goes to one webapp, prefix stripped.

    ``webapps`` is a sequence of instances (prefix: the instance's process
    name, or its ``path`` metadata) or a mapping prefix -> instance. Unknown
    paths answer 404.
    """

    def instance(
        *,
        port: int,
        webapps: Sequence[Instance] | Mapping[str, Instance],
        instance_suffix: str = "",
        instance_name: str | None = None,
        server_name: str = "localhost",
        bind: str = "127.0.0.1",
        worker_connections: int = 1024,
    ) -> Process:
        name = _name(instance_suffix, instance_name)
        if isinstance(webapps, Mapping):
            routes = [(p.strip("/"), w) for p, w in webapps.items()]
        else:
            routes = [(str(w.get("path") or _upstream_name(w)).strip("/"), w) for w in webapps]
        locations: list[Node] = []
        http: list[Node] = []
        for prefix, webapp in routes:
            upstream = _upstream_name(webapp)
            http.append(("upstream", upstream, [("server", _target(webapp))]))
            locations.append(("location", f"/{prefix}/", _proxy_location(upstream, "/")))
        locations.append(("location", "/", [("return", 404)]))
        http.append(("server", [("listen", f"{bind}:{port}"), ("server_name", server_name),
                                *locations]))
        return _process(settings, name, http=http, port=port, bind=bind, worker_processes=1,
                        worker_connections=worker_connections, main=(),
                        dependencies=[w.process for _, w in routes], extra_initialize="",
                        readiness=None, description=f"nginx reverse proxy (by path) {name}")

    return instance


# ---------------------------------------------------------------------------


def _name(instance_suffix: str, name: str | None) -> str:
    return instance_name("nginx", instance_suffix, name)


def _upstream_name(webapp: Instance) -> str:
    proc_name = webapp.process.effective_name
    if not proc_name:
        raise ValueError(f"{webapp!r}: a proxied webapp needs a process name")
    return re.sub(r"[^A-Za-z0-9_]", "_", proc_name)


def _target(webapp: Instance) -> str:
    port = webapp.get("port")
    if not isinstance(port, int):
        raise ValueError(f"webapp {_upstream_name(webapp)}: proxying needs an integer "
                         "'port' in the instance metadata")
    return f"{webapp.get('host') or '127.0.0.1'}:{port}"


def _proxy_location(upstream: str, uri: str) -> list[Node]:
    return [
        ("proxy_pass", f"http://{upstream}{uri}"),
        ("proxy_set_header", "Host", "$host"),
        ("proxy_set_header", "X-Real-IP", "$remote_addr"),
        ("proxy_set_header", "X-Forwarded-For", "$proxy_add_x_forwarded_for"),
    ]


def _process(settings: Settings, name: str, *, http: Sequence[Node], port: int | None,
             bind: str, worker_processes: int, worker_connections: int, main: Sequence[Node],
             dependencies: Sequence[Process], extra_initialize: str,
             readiness: Readiness | None, description: str) -> Process:
    dirs = instance_dirs(settings, name)
    owner = service_user(settings, name)
    conf = conf_file(settings, name)
    pid = pid_file(settings, name)
    error_log = os.path.join(dirs.log, "error.log")
    temp = {t: os.path.join(dirs.cache, t) for t in TEMP_PATHS}

    head: list[Node] = []
    if owner:
        head.append(("user", owner, owner))
    elif settings.calling_user == "root":
        head.append(("user", "root", settings.calling_group))
    mime_types = "/etc/nginx/mime.types"
    types: list[Node] = [("include", mime_types)] if os.path.exists(mime_types) else []
    config: list[Node] = [
        *head,
        ("worker_processes", worker_processes),
        ("pid", pid),
        ("error_log", error_log),
        # Bounds the graceful stop (stop_signal QUIT): open connections are closed after it.
        ("worker_shutdown_timeout", f"{GRACEFUL_STOP_SECONDS}s"),
        *main,
        ("events", [("worker_connections", worker_connections)]),
        ("http", [
            *types,
            ("default_type", "application/octet-stream"),
            ("access_log", os.path.join(dirs.log, "access.log")),
            *((f"{t}_temp_path", path) for t, path in temp.items()),
            *http,
        ]),
    ]
    text = CONFIG_HEADER + render_config(config)
    # One && list: a failed step fails the start instead of running on a stale config.
    init = chain(
        make_dirs(dirs.state, dirs.runtime, dirs.log, mode="0755"),
        make_dirs(dirs.cache, *temp.values(), owner=owner, mode="0700"),
        write_file(conf, text, mode="0644"),
        extra_initialize,
    )
    base_args = ["-p", dirs.state, "-e", error_log, "-c", conf]
    markers = marker_directives(settings, name)
    # Declared in both modes; only a privileged deployment creates the accounts.
    credentials = service_credentials(settings, name)
    check = readiness
    if check is None and port is not None:
        check = tcp_readiness(port, bind)
    return Process(
        name=name,
        instance_name=name,
        description=description,
        initialize=init,
        process=nginx_program(),
        args=base_args,
        daemon_extra_args=["-g", markers],
        foreground_process_extra_args=["-g", f"daemon off; {markers}"],
        pid_file=pid,
        dependencies=list(dependencies),
        credentials=credentials,
        readiness=check,
        # "QUIT: graceful shutdown": workers stop accepting, finish the requests
        # in flight and close idle keep-alive connections; TERM and INT are the
        # fast shutdown that drops them (nginx docs, "Controlling nginx"; Debian's
        # nginx.service stops with --retry QUIT/5). worker_shutdown_timeout
        # bounds the drain.
        stop_signal="QUIT",
    )
