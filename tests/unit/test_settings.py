"""The one settings table: flags, PROCMGMT_* variables and derived defaults."""

from __future__ import annotations

import os

import pytest

from procmgmt.errors import UsageError
from procmgmt.settings import FIELDS, resolve


def test_every_field_has_flag_and_env() -> None:
    """Each setting maps to exactly one --flag and one PROCMGMT_ variable, all distinct."""
    flags = [f.flag for f in FIELDS]
    envs = [f.env for f in FIELDS]
    assert len(set(flags)) == len(flags)
    assert len(set(envs)) == len(envs)
    renamed = {"ids_file": "ids"}  # --ids names a file: the attribute says so
    for f in FIELDS:
        base = renamed.get(f.attr, f.attr)
        assert f.flag == "--" + base.replace("_", "-")
        assert f.env == "PROCMGMT_" + base.upper()


def test_derivation_from_state_dir(tmp_path: os.PathLike[str]) -> None:
    """runtime, log, tmp, cache, spool, lock and lib derive from the state dir."""
    s = resolve({"state_dir": str(tmp_path)}, {})
    for name in ("run", "log", "tmp", "cache", "spool", "lock", "lib"):
        attr = {"run": "runtime_dir"}.get(name, f"{name}_dir")
        assert getattr(s, attr) == os.path.join(str(tmp_path), name)


def test_system_state_dir_uses_run_and_tmp() -> None:
    """/var as the state dir means /run for pid files and /tmp for temporary files."""
    s = resolve({"state_dir": "/var"}, {})
    assert s.runtime_dir == "/run"
    assert s.tmp_dir == "/tmp"
    assert s.lib_dir == "/var/lib"


@pytest.mark.parametrize("field", [f for f in FIELDS if f.attr.endswith("_dir")],
                         ids=lambda f: f.attr)
def test_each_dir_flag_and_env_reach_their_own_setting(field: object, tmp_path: object) -> None:
    """Regression for the original's bugs: every dir flag and variable sets only its own dir."""
    from procmgmt.settings import SettingField

    assert isinstance(field, SettingField)
    target = os.path.join(str(tmp_path), "x")
    base = {} if field.attr == "state_dir" else {"state_dir": str(tmp_path)}
    via_cli = resolve({**base, field.attr: target}, {})
    via_env = resolve(base, {field.env: target})
    plain = resolve(base, {})
    for s in (via_cli, via_env):
        assert getattr(s, field.attr) == target
        for other in FIELDS:
            if other.attr.endswith("_dir") and other.attr not in (field.attr, "state_dir") \
                    and field.attr != "state_dir":
                assert getattr(s, other.attr) == getattr(plain, other.attr), other.attr


def test_cli_beats_environment(tmp_path: object) -> None:
    """Command line > environment > default."""
    s = resolve({"state_dir": str(tmp_path), "profile": "cli"}, {"PROCMGMT_PROFILE": "env"})
    assert s.profile == "cli"
    s = resolve({"state_dir": str(tmp_path)}, {"PROCMGMT_PROFILE": "env"})
    assert s.profile == "env"


def test_booleans_and_json(tmp_path: object) -> None:
    """PROCMGMT_FORCE_DISABLE_USER_CHANGE=1 and --extra-params JSON are parsed."""
    s = resolve({"state_dir": str(tmp_path), "extra_params": '{"a": 1}'},
                {"PROCMGMT_FORCE_DISABLE_USER_CHANGE": "1"})
    assert s.force_disable_user_change is True
    assert s.extra_params == {"a": 1}
    with pytest.raises(UsageError, match="not valid JSON"):
        resolve({"state_dir": str(tmp_path), "extra_params": "{a"}, {})
    with pytest.raises(UsageError, match="JSON object"):
        resolve({"state_dir": str(tmp_path), "extra_params": "[1]"}, {})
    with pytest.raises(UsageError, match="boolean"):
        resolve({"state_dir": str(tmp_path)}, {"PROCMGMT_FORCE_DISABLE_USER_CHANGE": "maybe"})


def test_unprivileged_default_is_xdg_state(monkeypatch: pytest.MonkeyPatch) -> None:
    """A non-root user gets $XDG_STATE_HOME/procmgmt and user changes disabled."""
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    s = resolve({}, {"HOME": "/home/u", "XDG_STATE_HOME": "/home/u/st"})
    assert s.state_dir == "/home/u/st/procmgmt"
    assert s.force_disable_user_change is True
    s = resolve({}, {"HOME": "/home/u"})
    assert s.state_dir == "/home/u/.local/state/procmgmt"
    assert s.runtime_dir == "/home/u/.local/state/procmgmt/run"


def test_root_default_is_var(monkeypatch: pytest.MonkeyPatch) -> None:
    """Root deploys into /var and may switch users."""
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    s = resolve({}, {})
    assert s.state_dir == "/var"
    assert s.force_disable_user_change is False


def test_bad_profile_name(tmp_path: object) -> None:
    """A profile name cannot be a path."""
    with pytest.raises(UsageError, match="profile"):
        resolve({"state_dir": str(tmp_path), "profile": "../x"}, {})


def test_backend_settings_join_the_table() -> None:
    """Every PROCMGMT_* variable a built-in backend reads is declared by it, so --help
    and the docs list it; none is read with os.environ.get in a backend."""
    import re
    from pathlib import Path

    import procmgmt.backends
    from procmgmt.settings import backend_fields

    declared = {f.env for fields in backend_fields().values() for f in fields}
    assert {"PROCMGMT_SYSTEMD_PREFIX", "PROCMGMT_SYSTEMD_USER", "PROCMGMT_SYSTEMD_TARGET_DIR",
            "PROCMGMT_BSDRC_ENABLE_AT_BOOT", "PROCMGMT_BSDRC_TARGET_DIR",
            "PROCMGMT_BSDRC_RC_CONF", "PROCMGMT_SUPERVISORD_CONF", "PROCMGMT_LAUNCHD_PREFIX",
            "PROCMGMT_LAUNCHD_TARGET_DIR", "PROCMGMT_CYGRUNSRV_PREFIX",
            "PROCMGMT_CYGRUNSRV"} <= declared
    root = Path(procmgmt.backends.__file__).parent
    ad_hoc = [f"{p.relative_to(root)}: {m.group(0)}" for p in sorted(root.rglob("*.py"))
              for m in re.finditer(r"(?:\.get\(|environ\[)\s*[\"']PROCMGMT_\w+",
                                   p.read_text(encoding="utf-8"))]
    assert ad_hoc == []


def test_a_bad_backend_setting_fails_at_resolve() -> None:
    """A backend variable with a value of the wrong kind is refused up front, named."""
    with pytest.raises(UsageError, match="PROCMGMT_SYSTEMD_USER: expected a boolean"):
        resolve({"state_dir": "/srv/pm"}, {"PROCMGMT_SYSTEMD_USER": "perhaps"})
    assert resolve({"state_dir": "/srv/pm"}, {"PROCMGMT_SYSTEMD_USER": "1"}).state_dir == "/srv/pm"


def test_backend_settings_are_in_help(capsys: pytest.CaptureFixture[str]) -> None:
    """--help lists each backend's variables under its own heading."""
    from procmgmt.cli.main import main

    with pytest.raises(SystemExit):
        main(["switch", "--help"])
    out = capsys.readouterr().out
    assert "systemd backend settings (environment variables):" in out
    assert "PROCMGMT_SYSTEMD_TARGET_DIR" in out and "PROCMGMT_BSDRC_RC_CONF" in out


@pytest.mark.parametrize(("raw", "size"), [("4096", 4096), ("512K", 524288), ("10M", 10485760),
                                           ("1g", 1073741824), ("10MB", 10485760), ("0", 0)])
def test_log_max_bytes_takes_sizes(raw: str, size: int, tmp_path: object) -> None:
    s = resolve({"state_dir": str(tmp_path), "log_max_bytes": raw}, {})
    assert s.log_max_bytes == size
    assert s.log_rotation() == ((size, 5) if size else None)


def test_log_backups_from_the_environment_and_bad_values(tmp_path: object) -> None:
    s = resolve({"state_dir": str(tmp_path)},
                {"PROCMGMT_LOG_MAX_BYTES": "1M", "PROCMGMT_LOG_BACKUPS": "3"})
    assert s.log_rotation() == (1048576, 3)
    assert resolve({"state_dir": str(tmp_path)}, {}).log_rotation() is None
    with pytest.raises(UsageError, match="--log-max-bytes: expected a size in bytes"):
        resolve({"state_dir": str(tmp_path), "log_max_bytes": "10 parsecs"}, {})
    with pytest.raises(UsageError, match="PROCMGMT_LOG_BACKUPS: expected a whole number"):
        resolve({"state_dir": str(tmp_path)}, {"PROCMGMT_LOG_BACKUPS": "-1"})
