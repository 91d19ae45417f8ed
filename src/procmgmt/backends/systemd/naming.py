"""What the systemd units are called and where they go, from the environment.

The backend's own settings are declared here (``SystemdBackend.own_settings``
lists them in ``--help`` and the docs) and read through their declarations;
the build and the activator must agree on them, so both ask here.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

from procmgmt.errors import UsageError
from procmgmt.settings import SettingField

PREFIX_ENV = "PROCMGMT_SYSTEMD_PREFIX"
USER_ENV = "PROCMGMT_SYSTEMD_USER"
TARGET_DIR_ENV = "PROCMGMT_SYSTEMD_TARGET_DIR"
DEFAULT_PREFIX = "procmgmt-"
SYSTEM_TARGET_DIR = "/etc/systemd/system"
#: Where a store entry keeps its unit file.
UNIT_DIR = "etc/systemd/system"
#: A unit name systemd accepts for a service.
UNIT_NAME = re.compile(r"[A-Za-z0-9:_.\\-]+\.service")

#: The backend's own settings (environment variables, listed by ``--help``).
PREFIX_SETTING = SettingField(
    "systemd_prefix", None, PREFIX_ENV, "str", "unit name prefix (may be empty)",
    default=DEFAULT_PREFIX, keep_empty=True)
USER_SETTING = SettingField(
    "systemd_user", None, USER_ENV, "bool",
    "1: deploy into the user's manager (systemctl --user) instead of the system one",
    default=False)
TARGET_DIR_SETTING = SettingField(
    "systemd_target_dir", None, TARGET_DIR_ENV, "path",
    f"where units are linked (default {SYSTEM_TARGET_DIR}, or "
    "$XDG_CONFIG_HOME/systemd/user with SYSTEMD_USER)")
SETTINGS = (PREFIX_SETTING, USER_SETTING, TARGET_DIR_SETTING)


def user_mode(environ: Mapping[str, str] | None = None) -> bool:
    """True when ``PROCMGMT_SYSTEMD_USER`` asks for the user manager."""
    return bool(USER_SETTING.read(environ))


def unit_prefix(environ: Mapping[str, str] | None = None) -> str:
    """The unit name prefix (``PROCMGMT_SYSTEMD_PREFIX``, default ``procmgmt-``)."""
    prefix = str(PREFIX_SETTING.read(environ))
    if not re.fullmatch(r"[A-Za-z0-9:_.\\-]*", prefix):
        raise UsageError(f"{PREFIX_ENV}: {prefix!r} contains characters a unit name cannot")
    return prefix


def unit_name(name: str, prefix: str | None = None) -> str:
    """``<prefix><name>.service``."""
    return f"{unit_prefix() if prefix is None else prefix}{name}.service"


def target_dir(environ: Mapping[str, str] | None = None) -> str:
    """Where units are linked: ``PROCMGMT_SYSTEMD_TARGET_DIR`` or the mode's default."""
    env = os.environ if environ is None else environ
    explicit = TARGET_DIR_SETTING.read(env)
    if explicit:
        return str(explicit)
    if user_mode(env):
        config = env.get("XDG_CONFIG_HOME") or os.path.join(
            env.get("HOME") or os.path.expanduser("~"), ".config")
        return os.path.join(config, "systemd", "user")
    return SYSTEM_TARGET_DIR
