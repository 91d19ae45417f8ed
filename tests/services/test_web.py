"""nginx and Apache httpd constructors, deployed for real with sysvinit and supervisord
(and the webapps-nginx scenario with runit).

The original's acceptance scenario on the webapps-nginx example (redirect
check A, upgrade to B, rollback, undeploy, delete generations), Apache as a
static site and as a reverse proxy, and several nginx instances side by
side. Everything runs unprivileged (user changes disabled) on 127.0.0.1 and
high free ports; the test driver undeploys and fails on any leftover process.
The configuration tests at the end need no server: they check what the
constructors render (quoting, privileged-only directives, module handling).
"""

from __future__ import annotations

import json
import textwrap
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from procmgmt import Instance, Process
from procmgmt.services import apache, nginx
from procmgmt.settings import Settings
from procmgmt.testing import Deployment, deployed
from tests.conftest import EXAMPLES, golden_settings
from tests.e2e.util import Runner, free_port_block, port_closed, wait_no_leftovers

BACKENDS = ["sysvinit", "supervisord"]
NGINX_EXAMPLE = EXAMPLES / "webapps-nginx"
#: Ports the example uses above port_base: webapps 0..6, nginx 80 and 81.
PORT_SPAN = 82


def get(port: int, host: str | None = None, path: str = "/",
        timeout: float = 5.0) -> tuple[int, str]:
    """(status, body) of GET http://127.0.0.1:port/path with an optional Host header."""
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}")
    if host:
        req.add_header("Host", host)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.read().decode(errors="replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")


def startup_times(d: Deployment) -> dict[str, float]:
    """Seconds from 'start' to 'ready' per process in the last switch (engine timeline)."""
    path = d.engine.timeline_path
    with open(path) as f:
        events = json.load(f)["processes"]
    return {name: round(e["ready"] - e["start"], 3) for name, e in events.items()
            if "ready" in e and "start" in e}


def report(request: pytest.FixtureRequest, label: str, times: dict[str, float]) -> None:
    """Attach startup times to the test report (``-rP``/junit) and print them (``-s``)."""
    request.node.user_properties.append((label, times))
    print(f"\nstartup {label}: " + ", ".join(f"{k}={v:.3f}s" for k, v in sorted(times.items())))


def redirect_check_a(base: int) -> None:
    """Host webapp.local through nginx (base+80) reaches the webapp on base; others 404."""
    status, body = get(base + 80, "webapp.local")
    assert status == 200 and f"listening on port: {base}" in body, body
    assert get(base + 80, "unknown.local")[0] == 404


def redirect_check_b(base: int) -> None:
    """Each webappN.local reaches webappN through its own nginx, and nowhere else."""
    for i in range(1, 7):
        right, wrong = (base + 80, base + 81) if i <= 4 else (base + 81, base + 80)
        status, body = get(right, f"webapp{i}.local")
        assert status == 200, f"webapp{i}.local on port {right}: {status} {body}"
        assert f"listening on port: {base + i}" in body
        assert f"instance: webapp{i}<" in body
        assert get(wrong, f"webapp{i}.local")[0] == 404, f"webapp{i}.local leaked to {wrong}"
    for port in (base + 80, base + 81):
        assert get(port, "webapp.local")[0] == 404
        assert get(port, "unknown.local")[0] == 404


@pytest.mark.e2e
@pytest.mark.requires_tool("nginx")
@pytest.mark.parametrize("backend", [
    *BACKENDS, pytest.param("runit", marks=pytest.mark.requires_tool("runsvdir")),
    pytest.param("s6", marks=pytest.mark.requires_tool("s6-svscan", "execlineb"))])
def test_webapps_nginx_scenario(backend: str, tmp_path: Path,
                                request: pytest.FixtureRequest) -> None:
    """Deploy A, upgrade to B, roll back, undeploy, delete generations: every step checked."""
    base = free_port_block(PORT_SPAN)
    state = tmp_path / "state"
    params = {"port_base": base}
    run = Runner(state, backend, json.dumps(params), cwd=tmp_path)
    with deployed(NGINX_EXAMPLE / "processes.py", backend=backend, state_dir=state,
                  extra_params=params) as d:
        report(request, f"{backend} A", startup_times(d))
        redirect_check_a(base)

        d.switch(NGINX_EXAMPLE / "processes-advanced.py")
        report(request, f"{backend} B", startup_times(d))
        assert port_closed(base), "the obsolete webapp still listens"
        redirect_check_b(base)

        out = run("switch", "--rollback").stdout
        assert "switched to generation 1" in out
        redirect_check_a(base)
        for port in [base + i for i in range(1, 7)] + [base + 81]:
            assert port_closed(port), f"port {port} of model B still open after rollback"

        d.switch(None)
        for port in [base, base + 80]:
            assert port_closed(port)
        assert wait_no_leftovers(str(state.resolve())) == []

        generations = run("switch", "--list-generations").stdout.splitlines()
        assert len(generations) == 3 and "(current)" in generations[-1]
        run("switch", "--delete-all-generations")
        assert run("switch", "--list-generations").stdout.strip() == ""


def write_model(path: Path, body: str) -> Path:
    """A processes model file (the webapp comes from the webapps-nginx example)."""
    path.write_text(textwrap.dedent(f"""\
        import sys
        sys.path.insert(0, {str(NGINX_EXAMPLE)!r})
        from constructors import webapp
        sys.path.remove({str(NGINX_EXAMPLE)!r})
        from procmgmt import Instance
        from procmgmt.services.apache import reverse_proxy_apache, simple_webapp_apache
        from procmgmt.services.nginx import (reverse_proxy_path_based, simple_webapp_nginx)

        def processes(settings):
            base = int(settings.extra_params["port_base"])
        """) + textwrap.indent(textwrap.dedent(body), "    "))
    return path


@pytest.mark.e2e
@pytest.mark.requires_tool("apache2")
@pytest.mark.parametrize("backend", BACKENDS)
def test_apache_site_and_reverse_proxy(backend: str, tmp_path: Path,
                                       request: pytest.FixtureRequest) -> None:
    """A static Apache site serves its page; an Apache reverse proxy reaches the webapp."""
    model = write_model(tmp_path / "apache.py", """\
        web = Instance(webapp(settings)(port=base), port=base)
        site = simple_webapp_apache(settings)(port=base + 1, index_html="apache page\\n")
        proxy = reverse_proxy_apache(settings)(port=base + 2, webapps=[web],
                                               instance_suffix="-proxy")
        return {"webapp": web, "apache": Instance(site, port=base + 1),
                "apache-proxy": Instance(proxy, port=base + 2)}
        """)
    base = free_port_block(3)
    state = tmp_path / "state"
    with deployed(model, backend=backend, state_dir=state, extra_params={"port_base": base}) \
            as d:
        report(request, f"{backend} apache", startup_times(d))
        assert get(base + 1) == (200, "apache page\n")
        status, body = get(base + 2)
        assert status == 200 and f"listening on port: {base}" in body
        conf = (state / "apache-proxy" / "httpd.conf").read_text()
        assert "LoadModule proxy_http_module" in conf
        assert "log_config_module" not in conf, "a built-in module must not be loaded again"
        assert "User " not in conf and "Group " not in conf, "unprivileged: no User/Group"
        for name in ("apache", "apache-proxy"):
            pid = int((state / "run" / name / "httpd.pid").read_text().split()[0])
            assert d.status()[name] == (True, pid)
    assert port_closed(base + 1) and port_closed(base + 2)


@pytest.mark.e2e
@pytest.mark.requires_tool("nginx")
@pytest.mark.parametrize("backend", BACKENDS)
def test_nginx_instances_side_by_side(backend: str, tmp_path: Path,
                                      request: pytest.FixtureRequest) -> None:
    """Two static nginx sites and a path-based proxy run at once, each with its own files."""
    model = write_model(tmp_path / "nginx.py", """\
        make_site = simple_webapp_nginx(settings)
        web1 = Instance(webapp(settings)(port=base, instance_suffix="1"), port=base)
        web2 = Instance(webapp(settings)(port=base + 1, instance_suffix="2"), port=base + 1)
        proxy = reverse_proxy_path_based(settings)(port=base + 4, webapps=[web1, web2],
                                                   instance_suffix="-paths")
        return {
            "webapp1": web1, "webapp2": web2,
            "nginx": Instance(make_site(port=base + 2, index_html="first site\\n"),
                              port=base + 2),
            "nginx2": Instance(make_site(port=base + 3, index_html="second site\\n",
                                         instance_suffix="2"), port=base + 3),
            "nginx-paths": Instance(proxy, port=base + 4),
        }
        """)
    base = free_port_block(5)
    state = tmp_path / "state"
    with deployed(model, backend=backend, state_dir=state, extra_params={"port_base": base}) \
            as d:
        report(request, f"{backend} nginx x3", startup_times(d))
        assert get(base + 2) == (200, "first site\n")
        assert get(base + 3) == (200, "second site\n")
        for path, port in (("/webapp1/", base), ("/webapp2/x", base + 1)):
            status, body = get(base + 4, path=path)
            assert status == 200 and f"listening on port: {port}" in body
        assert get(base + 4, path="/elsewhere")[0] == 404
        pids = set()
        for name in ("nginx", "nginx2", "nginx-paths"):
            pid = int((state / "run" / name / "nginx.pid").read_text().split()[0])
            assert d.status()[name] == (True, pid)
            pids.add(pid)
            for temp in nginx.TEMP_PATHS:
                assert (state / "cache" / name / temp).is_dir()
            assert (state / "log" / name / "access.log").exists()
        assert len(pids) == 3


# ---------------------------------------------------------------------------
# Rendering only (no server)


def settings_for(privileged: bool, calling_user: str = "deployer") -> Settings:
    """Golden settings with a chosen privilege mode and deployer."""
    import dataclasses

    return dataclasses.replace(golden_settings(privileged=privileged), calling_user=calling_user,
                               calling_group=calling_user)


def conf_text(process: Process) -> str:
    """The configuration a process's initialize writes (the printf'd word, unquoted)."""
    import shlex

    words = shlex.split(process.initialize.split("printf '%s' ", 1)[1], posix=True)
    return words[0]


def test_nginx_quoting() -> None:
    """Values with spaces, quotes, braces, semicolons or backslashes are double-quoted."""
    assert nginx.quote("127.0.0.1:80") == "127.0.0.1:80"
    assert nginx.quote("$host") == "$host"
    assert nginx.quote("daemon off;") == '"daemon off;"'
    assert nginx.quote('a "b" \\c') == '"a \\"b\\" \\\\c"'
    assert nginx.quote("~ ^/x{2}") == '"~ ^/x{2}"'
    assert nginx.quote("#x") == '"#x"'
    assert nginx.quote(True) == "on"
    text = nginx.render_config([("http", [("server", [("listen", 80),
                                                      ("return", 200, "a b")])])])
    assert text == "http {\n    server {\n        listen 80;\n        return 200 \"a b\";\n" \
                   "    }\n}\n"
    with pytest.raises(ValueError, match="directive name"):
        nginx.render_config([("bad name", 1)])


def test_nginx_privileged_directives() -> None:
    """``user`` is the instance's own account only when user changes are allowed."""
    web = Instance(Process(name="webapp", process="/bin/true"), port=5000,
                   dns_name="webapp.local")
    priv = nginx.reverse_proxy_host_based(settings_for(True))(port=8080, webapps=[web])
    assert "\nuser nginx nginx;\n" in conf_text(priv)
    assert "nginx" in priv.credentials.users
    unpriv = nginx.reverse_proxy_host_based(settings_for(False))(port=8080, webapps=[web])
    assert "\nuser " not in conf_text(unpriv)
    as_root = nginx.reverse_proxy_host_based(settings_for(False, "root"))(port=8080,
                                                                          webapps=[web])
    assert "\nuser root root;\n" in conf_text(as_root), "workers must stay the deployer"
    assert priv.dependencies == [web.process]
    for temp in nginx.TEMP_PATHS:
        assert f"{temp}_temp_path /srv/pm/cache/nginx/{temp};" in conf_text(unpriv)
    markers = ("env PROCMGMT_DEPLOYMENT=/srv/pm:processes; "
               "env PROCMGMT_PROCESS=nginx;")
    assert priv.effective_foreground_args[-2:] == ["-g", f"daemon off; {markers}"]
    assert priv.effective_daemon_args[-2:] == ["-g", markers]
    assert priv.pid_file == "/srv/pm/run/nginx/nginx.pid"


def test_nginx_host_based_needs_dns_name() -> None:
    """A webapp without dns_name is a clear error, not a server block without a name."""
    web = Instance(Process(name="webapp", process="/bin/true"), port=5000)
    with pytest.raises(ValueError, match="dns_name"):
        nginx.reverse_proxy_host_based(settings_for(False))(port=8080, webapps=[web])


def test_apache_privileged_and_modules() -> None:
    """User/Group only when privileged; module names and (name, path) pairs; built-ins skipped."""
    priv = apache.simple_webapp_apache(settings_for(True))(port=8080)
    text = conf_text(priv)
    assert "\nUser apache\nGroup apache\n" in text
    unpriv = apache.apache(settings_for(False))(
        port=8080, modules=["mpm_event", "log_config", ("rewrite", "/opt/mod_rewrite.so"),
                            "mpm_event_module"])
    text = conf_text(unpriv)
    assert "User " not in text and "Group " not in text
    assert "LoadModule rewrite_module /opt/mod_rewrite.so" in text
    assert text.count("mpm_event_module") == 1
    if "log_config" in apache.builtin_modules(apache.httpd_program()):
        assert "log_config_module" not in text
    assert 'LogFormat "%h %l %u %t \\"%r\\" %>s %b" common' in text
    assert "Mutex file:/srv/pm/run/apache default" in text
    assert unpriv.effective_daemon_args[-2:] == ["-k", "start"]
    assert unpriv.effective_foreground_args[-1] == "-DFOREGROUND"
    assert apache.quote("a b") == '"a b"' and apache.quote('x"y') == '"x\\"y"'


def test_initialize_is_idempotent_and_fails_fast(tmp_path: Path) -> None:
    """nginx's initialize can run any number of times; a failing step fails all of it."""
    import subprocess

    from procmgmt.settings import resolve

    settings = resolve({"state_dir": str(tmp_path / "ok"), "force_disable_user_change": True},
                       {})
    proc = nginx.simple_webapp_nginx(settings)(port=8080, index_html="v1\n")
    for _ in range(2):
        subprocess.run(["sh", "-c", proc.initialize], check=True)
    conf = Path(nginx.conf_file(settings, "nginx"))
    assert conf.read_text() == conf_text(proc)
    index = tmp_path / "ok" / "nginx" / "html" / "index.html"
    index.write_text("edited\n")
    changed = nginx.simple_webapp_nginx(settings)(port=8080, index_html="v2\n")
    subprocess.run(["sh", "-c", changed.initialize], check=True)
    assert index.read_text() == "edited\n", "the page is written once, never overwritten"

    broken = resolve({"state_dir": str(tmp_path / "bad"), "force_disable_user_change": True},
                     {})
    (tmp_path / "bad" / "log").mkdir(parents=True)
    (tmp_path / "bad" / "log" / "nginx").write_text("a file where a directory belongs")
    proc = nginx.simple_webapp_nginx(broken)(port=8080)
    result = subprocess.run(["sh", "-c", proc.initialize], capture_output=True, check=False)
    assert result.returncode != 0
    assert not Path(nginx.conf_file(broken, "nginx")).exists()


def test_write_file_keeps_content_byte_for_byte(tmp_path: Path) -> None:
    """Config text with quotes, $, backquotes, backslashes, % and newlines arrives unchanged."""
    import subprocess

    from procmgmt.services._common import write_file

    text = "a 'b' \"c\" $host ${x} `id` \\n \\\\ 100% \n\nlast line without newline"
    target = tmp_path / "sub dir" / "f.conf"
    target.parent.mkdir()
    for shell in ("sh", "bash"):
        target.unlink(missing_ok=True)
        subprocess.run([shell, "-c", write_file(str(target), text, mode="0600")], check=True)
        assert target.read_text() == text
        assert target.stat().st_mode & 0o777 == 0o600
        assert not Path(f"{target}.tmp").exists()
