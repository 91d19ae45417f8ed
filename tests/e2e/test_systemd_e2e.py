"""The systemd backend against a real systemd: this machine's OS booted in systemd-nspawn.

One boot (module fixture) runs every scenario inside the container with
procmgmt's own CLI; each test below asserts its part of the reported
checks. A check that never reported fails its test, so a scenario that
crashes half-way cannot pass. The container has a private network and a
throw-away overlay root: nothing it starts is visible on the host, and the
whole boot ends with a poweroff (``timeout`` kills it otherwise).
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e import systemd_nspawn as ns
from tests.e2e.nspawn_run import assert_checks, booted_scenario

# One boot at a time (a whole OS each), beside the accounts group: its accounts
# are made inside the container's throw-away overlay root.
pytestmark = [pytest.mark.e2e, pytest.mark.root, pytest.mark.xdist_group("nspawn"),
              pytest.mark.timeout(200)]

#: Characters that systemd's unit parser, specifier expansion, word
#: splitting and $-expansion treat specially, plus non-ASCII.
NASTY = ' \t"\'\\$%;{}=#\n*?~&|<>`!-éü€𝄞\u00a0'


def quoting_cases() -> dict[str, Any]:
    """Arguments and environment values that must reach the process unchanged."""
    argv = ["", " ", ";", "\\;", "a;b", "$HOME", "${HOME}", "$$", "%", "%n", "%%",
            '"', "'", "\\", "\\n", "x\ny", "tab\there", "ü€𝄞", "-x", "#comment", "a=b",
            "trailing\\", " lead", "{}", "*?", "`id`"]
    env = {"SPACES": "a b  c", "QUOTES": "\"double\" 'single'", "DOLLAR": "$HOME ${X} $$",
           "PERCENT": "100% %n %%", "BACKSLASH": "c:\\path\\", "UNICODE": "ü€𝄞 \u00a0",
           "TAB": "a\tb", "EMPTY": "", "EQUALS": "a=b=c", "HASH": "#not a comment",
           "SEMI": ";"}
    rng = random.Random(20240521)
    for i in range(12):
        argv.append("".join(rng.choice(NASTY + "ab") for _ in range(rng.randrange(1, 12))))
        env[f"RANDOM{i}"] = "".join(rng.choice(NASTY.replace("\n", "") + "ab")
                                    for _ in range(rng.randrange(0, 12)))
    return {"argv": argv, "environment": env}


@pytest.fixture(scope="module")
def booted() -> Iterator[ns.BootResult]:
    """One container boot running the system, extras and user scenarios."""
    reason = ns.unavailable()
    if reason:
        pytest.skip(reason)
    config = {"steps": ["system", "extras", "nochange", "user", "ops", "userops"],
              "quoting": quoting_cases(),
              "extra_port_base": ns.EXTRA_PORT_BASE}
    with booted_scenario(config, "pm-nspawn") as result:
        yield result


def webapps_checks(mode: str) -> list[str]:
    """The checks of one webapps scenario run (system or user mode)."""
    names = [f"{mode}.{c}" for c in (
        "switch1.rc", "switch1.links", "status", "switch2.rc", "switch2.webapp1_kept",
        "switch2.ordering", "switch2.start_order", "rollback.rc", "rollback.webapp1_kept",
        "undeploy.rc", "undeploy.none_active", "delete_all.rc", "list_generations.empty",
        "completed", "day2.restart", "day2.stopped_by_hand", "day2.start", "day2.logs")]
    names += [f"{mode}.switch1.{n}.active" for n in ns.FIRST_NAMES]
    names += [f"{mode}.switch2.webapp.inactive"]
    names += [f"{mode}.switch2.{n}.active" for n in ns.ADVANCED_NAMES]
    names += [f"{mode}.rollback.{n}.active" for n in ns.FIRST_NAMES]
    names += [f"{mode}.rollback.{n}.inactive" for n in ns.ADVANCED_NAMES[1:]]
    names += [f"{mode}.undeploy.{n}.inactive" for n in ("webapp", *ns.ADVANCED_NAMES)]
    if mode == "system":
        names += [f"system.{step}.accounts" for step in STEPS]
        names += ["system.switch1.created_before_start", "system.switch2.account_order",
                  "system.switch2.data_kept"]
    if mode == "nochange":
        names += [f"nochange.{step}.accounts_untouched" for step in STEPS]
    if mode != "user":
        names += [f"{mode}.undeploy.dirs_kept", f"{mode}.undeploy.record"]
    return names


#: The switches of a webapps scenario that change accounts.
STEPS = ("switch1", "switch2", "rollback", "undeploy")


def test_system_manager_as_root(booted: ns.BootResult) -> None:
    """switch, switch to advanced (obsolete stopped, webapp1 keeps its MainPID, Wants/After
    in place, start order by dependency), rollback, undeploy and deleting generations work
    with the system manager. procmgmt creates each webapp's user and group before the
    unit starts (nothing creates them beforehand), each MainPID runs with that uid/gid
    in all four /proc status fields, the advanced model adds webapp2..6 and deletes
    ``webapp`` after stopping it, rollback brings ``webapp`` back and deletes webapp2..6,
    undeploy deletes every account procmgmt created (empty record), and the state dirs
    and a directory owned by a deleted user stay."""
    assert_checks(booted, webapps_checks("system"))


def test_user_changes_disabled_as_root(booted: ns.BootResult) -> None:
    """The same lifecycle as root with --force-disable-user-change: no User= in the units,
    every MainPID runs as root (uid and gid 0), and no passwd/shadow/group/gshadow line
    of the webapp accounts changes at any step (no record is even written)."""
    assert_checks(booted, webapps_checks("nochange"))


def test_user_manager_as_unprivileged_user(booted: ns.BootResult) -> None:
    """The same lifecycle in ``systemctl --user`` of a non-root user, with units linked
    into ~/.config/systemd/user and every process running as that user."""
    assert_checks(booted, ["user.manager_running", *webapps_checks("user")])


def test_forking_initialize_and_quoting(booted: ns.BootResult) -> None:
    """Type=forking follows the daemon's pid file; initialize runs as root (``+``) before a
    process that runs as another user; nasty arguments and environment values reach the
    process exactly as written in the model."""
    assert_checks(booted, ["extras.switch.rc", "extras.account_created",
                           "extras.account_deleted", "extras.forking",
                           "extras.initialize_as_root",
                           "extras.quoting.argv", "extras.quoting.environment",
                           "extras.undeploy.rc", "extras.completed"])


def ops_checks(mode: str) -> list[str]:
    """The checks of the day-two operations scenario in ``mode`` (system or user)."""
    return [f"{mode}ops.{c}" for c in (
        "switch.rc", "status", "stop_timeout", "reload", "logs_since", "liveness_restart",
        "liveness_logs", "logs_follow", "undeploy", "crash_forgotten")]


def test_day_two_operations_as_root(booted: ns.BootResult) -> None:
    """On one process of the system manager: ``status`` shows restart policy, restart
    count and liveness check; stop_timeout is TimeoutStopSec=; ``reload`` keeps the
    MainPID and the program logs it; ``logs --since T`` shows only what came after T;
    a server that stops answering is killed by its liveness watcher and restarted by
    Restart=always (new MainPID, NRestarts and ``restarts`` 1, the watcher's lines in
    ``logs``), and ``logs -f`` follows across that restart; undeploy stops it."""
    assert_checks(booted, [*ops_checks("system"), "ops.completed"])


def test_day_two_operations_as_unprivileged_user(booted: ns.BootResult) -> None:
    """The same in ``systemctl --user`` of a non-root user."""
    assert_checks(booted, [*ops_checks("user"), "userops.completed"])

