"""The service catalogue under a real systemd: this machine's OS booted in systemd-nspawn.

One boot (module fixture) runs :mod:`tests.e2e.systemd_services` inside the
container: as root with user changes allowed and ``-P systemd``, the
services example (PostgreSQL x2, Redis, MariaDB, nginx, Apache) plus two
memcached, then the webapps-nginx example (six webapps behind two nginx).
Each service is checked with its real client, each instance runs as the
user procmgmt created for it, and undeploy leaves nothing behind. Debian's
own units of these services (enabled in the host's tree) are masked on the
container's command line. After them, in the same boot, both deployments
run again in the unprivileged profile: ``systemctl --user`` of a non-root
user, procmgmt run by that user (user changes disabled automatically), a
state dir in its home, high ports. The tests below assert their part of the
reported checks; a check that never reported fails its test.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests import _lanes
from tests.e2e import systemd_nspawn as ns
from tests.e2e import systemd_services as svc
from tests.e2e.nspawn_run import assert_checks, booted_scenario

SERVICES_PORT_BASE = 38400
WEBNGINX_PORT_BASE = 38500
USER_SERVICES_PORT_BASE = 38600
USER_WEBNGINX_PORT_BASE = 38700
#: What the host needs installed (tests/_lanes.py TOOLS): the container boots its tree.
PROGRAMS = ("postgres", "redis-server", "redis-cli", "mariadbd", "mariadb", "memcached",
            "nginx", "apache2", "psql", "curl")

# One boot at a time (a whole OS each), beside the accounts group: its accounts
# are made inside the container's throw-away overlay root.
pytestmark = [pytest.mark.e2e, pytest.mark.root, pytest.mark.xdist_group("nspawn"),
              pytest.mark.timeout(200)]


@pytest.fixture(scope="module")
def booted() -> Iterator[ns.BootResult]:
    """One container boot running the catalogue and webapps-nginx scenarios, as root
    and then as an unprivileged user."""
    reason = ns.unavailable()
    if reason:
        pytest.skip(reason)
    for program in PROGRAMS:
        _lanes.require_tool(program)
    config = {"steps": ["services", "userservices"],
              "services_port_base": SERVICES_PORT_BASE,
              "webnginx_port_base": WEBNGINX_PORT_BASE,
              "user_services_port_base": USER_SERVICES_PORT_BASE,
              "user_webnginx_port_base": USER_WEBNGINX_PORT_BASE}
    with booted_scenario(config, "pm-nspawn-svc") as result:
        yield result


def deployment_checks(label: str, names: dict[str, int]) -> list[str]:
    """Checks every deployment reports: switch, accounts, users, and the undeploy."""
    checks = [f"{label}.switch.rc", f"{label}.undeploy.rc", f"{label}.undeploy.no_unit",
              f"{label}.undeploy.ports_closed", f"{label}.undeploy.no_process",
              f"{label}.undeploy.accounts_deleted", f"{label}.undeploy.data_kept"]
    for n in names:
        checks += [f"{label}.{n}.account", f"{label}.{n}.runs_as_own_user"]
    return checks


def user_deployment_checks(label: str, names: dict[str, int]) -> list[str]:
    """Checks every unprivileged deployment reports: switch, no account touched, every
    unit's processes the user's, and the undeploy."""
    checks = [f"{label}.{c}" for c in (
        "switch.rc", "accounts_untouched", "undeploy.rc", "undeploy.no_unit",
        "undeploy.ports_closed", "undeploy.only_user_manager", "undeploy.accounts_untouched",
        "undeploy.data_kept")]
    return checks + [f"{label}.{n}.runs_as_deployer" for n in names]


def test_debian_units_cannot_interfere(booted: ns.BootResult) -> None:
    """Debian's units of these services are masked and inactive in the container, and
    none of their default ports opens at any point of the scenario."""
    assert_checks(booted, [f"debian.{u}.masked" for u in ns.DEBIAN_UNITS]
                  + [f"debian.{s}.ports_closed" for s in ("boot", "catalogue", "webnginx",
                                                          "usercatalogue", "userwebnginx")])


def test_catalogue_answers_its_clients(booted: ns.BootResult) -> None:
    """Both PostgreSQL servers list their databases over their own socket dir (and each
    is its own server: port and data dir), Redis answers PONG, MariaDB shows its
    databases over its socket, nginx and Apache serve their sites through curl, both
    memcached answer ``version``; data dirs belong to their instance users."""
    assert_checks(booted, [
        *(f"catalogue.{n}.{c}" for n in ("postgresql1", "postgresql2")
          for c in ("psql", "own_server", "data_dir_owned")),
        "catalogue.redis.ping", "catalogue.redis.data_dir_owned",
        "catalogue.mariadb.show_databases", "catalogue.mariadb.data_dir_owned",
        "catalogue.nginx.curl", "catalogue.apache.curl",
        "catalogue.memcached1.version", "catalogue.memcached2.version",
        "catalogue.side_by_side", "services.completed"])


def test_catalogue_accounts_and_undeploy(booted: ns.BootResult) -> None:
    """procmgmt creates every missing instance account before starting it (Debian's own
    ``redis`` account is used as it is); every unit runs as that user (nginx/Apache: a
    root master whose children are the user's); undeploy leaves no unit, no open port,
    no process of a service user and no account procmgmt created (it keeps ``redis``),
    and keeps the data directories."""
    assert_checks(booted, deployment_checks("catalogue", svc.CATALOGUE))


def test_webapps_nginx_virtual_hosts(booted: ns.BootResult) -> None:
    """Each webappN.local reaches webappN through the nginx that proxies it (curl with a
    Host header) and gets 404 from the other one; accounts, users and undeploy as for
    the catalogue."""
    hosts = [f"webnginx.webapp{i}.{c}" for i in range(1, 7)
             for c in (("via_nginx", "not_via_nginx2") if i <= 4
                       else ("via_nginx2", "not_via_nginx"))]
    assert_checks(booted, [*hosts, *deployment_checks("webnginx", svc.WEBNGINX)])


def test_user_catalogue_answers_its_clients(booted: ns.BootResult) -> None:
    """In the user manager of a non-root user (procmgmt run by that user, state in its
    home, high ports): both PostgreSQL servers list their databases (each its own port
    and data dir), Redis answers PONG, MariaDB shows its databases, nginx and Apache
    serve through curl, both memcached answer ``version``; every data dir belongs to
    that user."""
    assert_checks(booted, [
        "user.manager_running",
        *(f"usercatalogue.{n}.{c}" for n in ("postgresql1", "postgresql2")
          for c in ("psql", "own_server", "data_dir_owned")),
        "usercatalogue.redis.ping", "usercatalogue.redis.data_dir_owned",
        "usercatalogue.mariadb.show_databases", "usercatalogue.mariadb.data_dir_owned",
        "usercatalogue.nginx.curl", "usercatalogue.apache.curl",
        "usercatalogue.memcached1.version", "usercatalogue.memcached2.version",
        "usercatalogue.side_by_side", "userservices.completed"])


def test_user_catalogue_runs_as_user_and_undeploys(booted: ns.BootResult) -> None:
    """Unprivileged, no account is created or deleted, every process of every unit's
    cgroup (nginx and Apache masters included) runs as the deploying user, and undeploy
    leaves no user unit, no open port and no process of that user but its manager."""
    assert_checks(booted, [*user_deployment_checks("usercatalogue", svc.CATALOGUE),
                           *user_deployment_checks("userwebnginx", svc.WEBNGINX)])


def test_user_webapps_nginx_virtual_hosts(booted: ns.BootResult) -> None:
    """webapps-nginx in the user manager: each webappN.local through the nginx that
    proxies it, 404 from the other one."""
    assert_checks(booted, [f"userwebnginx.webapp{i}.{c}" for i in range(1, 7)
                           for c in (("via_nginx", "not_via_nginx2") if i <= 4
                                     else ("via_nginx2", "not_via_nginx"))])

