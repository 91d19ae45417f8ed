"""Apache httpd as a managed process: a simple web app and a reverse proxy.

``/usr/sbin/apache2`` (or ``httpd``) is called directly with ``-f <conf>``:
Debian's ``apache2ctl`` and ``/etc/apache2/envvars`` assume www-data and
/var/run/apache2. Every path derives from the instance name (``apache``,
``apache2``...):

- ``ServerRoot`` ``<state_dir>/<instance>`` (holding ``httpd.conf`` and, for the
  simple web app, ``htdocs/``);
- ``PidFile``, ``DefaultRuntimeDir`` and the ``Mutex file:`` directory under
  ``<runtime_dir>/<instance>``;
- ``ErrorLog`` and the access log under ``<log_dir>/<instance>``.

Modules are a list of names (``"proxy_http"`` loads
``<module_dir>/mod_proxy_http.so``) or ``(name, path)`` pairs. Modules compiled
into the binary (``apache2 -l``: ``log_config``, ``unixd``... on Debian) are
skipped: loading them again is a configuration error there.

Foreground mode is ``-DFOREGROUND``; daemon mode ``-k start`` (httpd forks and
writes ``PidFile``). ``User``/``Group`` (the instance's own account) are written
only when user changes are allowed: httpd refuses ``User root`` outright, and
an unprivileged httpd cannot switch users anyway. (As root with user changes
disabled, httpd then logs an AH02155 alert for its compiled-in ``#-1`` user and
keeps its children as root.)
"""

from __future__ import annotations

import functools
import os
import re
import subprocess
from collections.abc import Callable, Sequence
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

#: A directive ``("Listen", "127.0.0.1:80")`` or a section ``("Directory", "/x", [...])``.
Node = tuple[Any, ...]
#: A module: a name (``"proxy_http"``) or a (name, path to the .so) pair.
Module = str | tuple[str, str]

#: Modules a static site needs (built-ins are skipped at render time).
DEFAULT_MODULES: tuple[Module, ...] = ("mpm_event", "unixd", "authz_core", "dir", "mime",
                                       "log_config")
#: Added for a reverse proxy.
PROXY_MODULES: tuple[Module, ...] = ("proxy", "proxy_http")
#: Compiled-in modules of Debian's apache2 (used when ``-l`` cannot be run).
DEBIAN_BUILTINS = frozenset({"core", "so", "watchdog", "http_core", "log_config", "logio",
                             "version", "unixd"})

_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
_SAFE = re.compile(r"^[A-Za-z0-9_./:@=+,*%$~^!?&|()\[\]{}<>-]+$")


def quote(value: Any) -> str:
    """One httpd argument, double-quoted (``\\"`` and ``\\\\`` escaped) unless plainly safe."""
    if isinstance(value, bool):
        return "On" if value else "Off"
    if isinstance(value, int):
        return str(value)
    if not isinstance(value, str):
        raise TypeError(f"httpd value {value!r} is a {type(value).__name__}, "
                        "expected str, int or bool")
    return config_token(value, _SAFE)


def render_config(nodes: Sequence[Node], indent: int = 0) -> str:
    """httpd.conf text: ``("Listen", 80)`` is a directive, a trailing list makes a section."""
    pad = "    " * indent
    out: list[str] = []
    for node in nodes:
        name, rest, body = split_directive(node, "httpd", _NAME)
        if body is not None:
            out.append(pad + "<" + " ".join([name, *(quote(a) for a in rest)]) + ">")
            inner = render_config(body, indent + 1).rstrip("\n")
            if inner:
                out.append(inner)
            out.append(f"{pad}</{name}>")
        else:
            out.append(pad + " ".join([name, *(quote(a) for a in rest)]))
    return "\n".join(out) + "\n"


def httpd_program() -> str:
    """Debian's apache2, else httpd."""
    return find_program("/usr/sbin/apache2", "apache2", "/usr/sbin/httpd", "httpd")


def module_dir() -> str:
    """Where the shared modules live."""
    for candidate in ("/usr/lib/apache2/modules", "/usr/lib/httpd/modules",
                      "/usr/lib64/httpd/modules", "/usr/libexec/apache2"):
        if os.path.isdir(candidate):
            return candidate
    return "/usr/lib/apache2/modules"


@functools.cache
def builtin_modules(program: str) -> frozenset[str]:
    """Modules compiled into ``program`` (``-l`` lists ``mod_x.c``; ``http_core.c`` too)."""
    try:
        out = subprocess.run([program, "-l"], capture_output=True, text=True, timeout=10,
                             check=False).stdout
    except (OSError, subprocess.TimeoutExpired):
        return DEBIAN_BUILTINS
    found = {m.group(1) for m in re.finditer(r"^\s*(?:mod_)?(\w+)\.c\s*$", out, re.MULTILINE)}
    return frozenset(found) if found else DEBIAN_BUILTINS


def load_module_lines(modules: Sequence[Module], program: str | None = None) -> list[Node]:
    """``LoadModule`` directives, built-ins left out, duplicates dropped."""
    builtins = builtin_modules(program or httpd_program())
    seen: set[str] = set()
    lines: list[Node] = []
    for module in modules:
        if isinstance(module, tuple):
            name, path = module
        else:
            name, path = module, ""
        short = name.removesuffix("_module")
        if short in builtins or short in seen:
            continue
        seen.add(short)
        lines.append(("LoadModule", f"{short}_module",
                      path or os.path.join(module_dir(), f"mod_{short}.so")))
    return lines


def conf_file(settings: Settings, name: str) -> str:
    """Where an instance's generated httpd.conf lives."""
    return os.path.join(instance_dirs(settings, name).state, "httpd.conf")


def pid_file(settings: Settings, name: str) -> str:
    """An instance's pid file."""
    return os.path.join(instance_dirs(settings, name).runtime, "httpd.pid")


def apache(settings: Settings) -> Callable[..., Process]:
    """httpd with the given site configuration (directives after the base setup)."""

    def instance(
        *,
        port: int,
        site: Sequence[Node] = (),
        modules: Sequence[Module] = DEFAULT_MODULES,
        instance_suffix: str = "",
        instance_name: str | None = None,
        bind: str = "127.0.0.1",
        server_name: str = "localhost",
        dependencies: Sequence[Process] = (),
        extra_initialize: str = "",
        readiness: Readiness | None = None,
        description: str | None = None,
    ) -> Process:
        name = _name(instance_suffix, instance_name)
        return _process(settings, name, port=port, site=site, modules=modules, bind=bind,
                        server_name=server_name, dependencies=dependencies,
                        extra_initialize=extra_initialize, readiness=readiness,
                        description=description or f"Apache httpd {name}")

    return instance


def simple_webapp_apache(settings: Settings) -> Callable[..., Process]:
    """httpd serving a document root (``<state_dir>/<instance>/htdocs`` by default).

    ``index_html`` becomes ``index.html`` once, when the root has none.
    """

    def instance(
        *,
        port: int,
        instance_suffix: str = "",
        instance_name: str | None = None,
        document_root: str | None = None,
        index_html: str | None = None,
        modules: Sequence[Module] = DEFAULT_MODULES,
        bind: str = "127.0.0.1",
        server_name: str = "localhost",
        dependencies: Sequence[Process] = (),
    ) -> Process:
        name = _name(instance_suffix, instance_name)
        root = document_root or os.path.join(instance_dirs(settings, name).state, "htdocs")
        owner = service_user(settings, name)
        page = index_html if index_html is not None else (
            f"<!DOCTYPE html>\n<html><body><p>Apache instance {name}</p></body></html>\n")
        index = os.path.join(root, "index.html")
        init = chain(make_dirs(root, owner=owner, mode="0755"),
                     once(index, write_file(index, page, mode="0644", owner=owner)))
        site: list[Node] = [
            ("DocumentRoot", root),
            ("DirectoryIndex", "index.html"),
            ("Directory", root, [("Options", "None"), ("AllowOverride", "None"),
                                 ("Require", "all", "granted")]),
        ]
        return _process(settings, name, port=port, site=site, modules=modules, bind=bind,
                        server_name=server_name, dependencies=dependencies,
                        extra_initialize=init, readiness=None,
                        description=f"Apache httpd static site {name}")

    return instance


def reverse_proxy_apache(settings: Settings) -> Callable[..., Process]:
    """httpd (mod_proxy, mod_proxy_http) forwarding to webapp instances.

    One webapp: everything goes to it. Several: ``/<process name>/`` (or the
    instance's ``path`` metadata) goes to each, other paths answer 404. The
    webapps' processes become dependencies.
    """

    def instance(
        *,
        port: int,
        webapps: Sequence[Instance],
        instance_suffix: str = "",
        instance_name: str | None = None,
        modules: Sequence[Module] = DEFAULT_MODULES,
        bind: str = "127.0.0.1",
        server_name: str = "localhost",
        protocol: str = "http",
    ) -> Process:
        name = _name(instance_suffix, instance_name)
        if not webapps:
            raise ValueError(f"{name}: a reverse proxy needs at least one webapp")
        site: list[Node] = [("ProxyRequests", False), ("ProxyPreserveHost", True)]
        for webapp in webapps:
            port_ = webapp.get("port")
            if not isinstance(port_, int):
                raise ValueError(f"{webapp!r}: proxying needs an integer 'port' in the "
                                 "instance metadata")
            target = f"{protocol}://{webapp.get('host') or '127.0.0.1'}:{port_}/"
            if len(webapps) == 1:
                prefix = "/"
            else:
                prefix = "/" + str(webapp.get("path") or webapp.process.effective_name
                                   ).strip("/") + "/"
            site += [("ProxyPass", prefix, target), ("ProxyPassReverse", prefix, target)]
        return _process(settings, name, port=port, site=site,
                        modules=[*modules, *PROXY_MODULES], bind=bind, server_name=server_name,
                        dependencies=[w.process for w in webapps], extra_initialize="",
                        readiness=None, description=f"Apache httpd reverse proxy {name}")

    return instance


# ---------------------------------------------------------------------------


def _name(instance_suffix: str, name: str | None) -> str:
    return instance_name("apache", instance_suffix, name)


def _process(settings: Settings, name: str, *, port: int, site: Sequence[Node],
             modules: Sequence[Module], bind: str, server_name: str,
             dependencies: Sequence[Process], extra_initialize: str,
             readiness: Readiness | None, description: str) -> Process:
    dirs = instance_dirs(settings, name)
    owner = service_user(settings, name)
    program = httpd_program()
    conf = conf_file(settings, name)
    config: list[Node] = [
        ("ServerRoot", dirs.state),
        ("ServerName", server_name),
        ("Listen", f"{bind}:{port}"),
        ("PidFile", pid_file(settings, name)),
        ("DefaultRuntimeDir", dirs.runtime),
        ("Mutex", f"file:{dirs.runtime}", "default"),
        ("ErrorLog", os.path.join(dirs.log, "error.log")),
        *load_module_lines(modules, program),
        # Bounds the graceful stop (stop_signal WINCH); 0, the default, waits forever.
        # An MPM directive: it follows the LoadModule lines.
        ("GracefulShutdownTimeout", GRACEFUL_STOP_SECONDS),
    ]
    if owner:
        config += [("User", owner), ("Group", owner)]
    if os.path.exists("/etc/mime.types"):
        config.append(("TypesConfig", "/etc/mime.types"))
    config += [
        ("LogFormat", '%h %l %u %t "%r" %>s %b', "common"),
        ("CustomLog", os.path.join(dirs.log, "access.log"), "common"),
        *site,
    ]
    text = CONFIG_HEADER + render_config(config)
    # One && list: a failed step fails the start instead of running on a stale config.
    init = chain(
        make_dirs(dirs.state, dirs.runtime, dirs.log, mode="0755"),
        write_file(conf, text, mode="0644"),
        extra_initialize,
    )
    return Process(
        name=name,
        instance_name=name,
        description=description,
        initialize=init,
        process=program,
        args=["-f", conf],
        daemon_extra_args=["-k", "start"],
        foreground_process_extra_args=["-DFOREGROUND"],
        pid_file=pid_file(settings, name),
        dependencies=list(dependencies),
        # Declared in both modes; only a privileged deployment creates the accounts.
        credentials=service_credentials(settings, name),
        readiness=readiness or tcp_readiness(port, bind),
        # httpd's graceful stop (apachectl -k graceful-stop): "the parent ... will
        # remove its PidFile and cease listening on all ports", then waits for
        # children to finish their current requests, for at most
        # GracefulShutdownTimeout. SIGTERM would abort requests in flight
        # (Apache httpd docs, "Stopping and Restarting Apache HTTP Server").
        stop_signal="WINCH",
    )
