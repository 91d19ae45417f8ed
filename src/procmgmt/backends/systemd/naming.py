"""What the systemd units are called and where they go, from the environment.

These settings are read from the environment (kept out of the shared settings
table because only this backend uses them); the build and the activator must
agree on them, so both ask here.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

from procmgmt.errors import UsageError

PREFIX_ENV = "PROCMGMT_SYSTEMD_PREFIX"
USER_ENV = "PROCMGMT_SYSTEMD_USER"
TARGET_DIR_ENV = "PROCMGMT_SYSTEMD_TARGET_DIR"
DEFAULT_PREFIX = "procmgmt-"
SYSTEM_TARGET_DIR = "/etc/systemd/system"
#: Where a store entry keeps its unit file.
UNIT_DIR = "etc/systemd/system"
#: A unit name systemd accepts for a service.
UNIT_NAME = re.compile(r"[A-Za-z0-9:_.\\-]+\.service")

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def _env_flag(environ: Mapping[str, str], name: str) -> bool:
    raw = environ.get(name, "").strip().lower()
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    raise UsageError(f"{name}: expected 1 or 0, got {environ[name]!r}")


def user_mode(environ: Mapping[str, str] | None = None) -> bool:
    """True when ``PROCMGMT_SYSTEMD_USER`` asks for the user manager."""
    return _env_flag(os.environ if environ is None else environ, USER_ENV)


def unit_prefix(environ: Mapping[str, str] | None = None) -> str:
    """The unit name prefix (``PROCMGMT_SYSTEMD_PREFIX``, default ``procmgmt-``)."""
    env = os.environ if environ is None else environ
    prefix = env.get(PREFIX_ENV, DEFAULT_PREFIX)
    if not re.fullmatch(r"[A-Za-z0-9:_.\\-]*", prefix):
        raise UsageError(f"{PREFIX_ENV}: {prefix!r} contains characters a unit name cannot")
    return prefix


def unit_name(name: str, prefix: str | None = None) -> str:
    """``<prefix><name>.service``."""
    return f"{unit_prefix() if prefix is None else prefix}{name}.service"


def target_dir(environ: Mapping[str, str] | None = None) -> str:
    """Where units are linked: ``PROCMGMT_SYSTEMD_TARGET_DIR`` or the mode's default."""
    env = os.environ if environ is None else environ
    explicit = env.get(TARGET_DIR_ENV)
    if explicit:
        return os.path.abspath(explicit)
    if user_mode(env):
        config = env.get("XDG_CONFIG_HOME") or os.path.join(
            env.get("HOME") or os.path.expanduser("~"), ".config")
        return os.path.join(config, "systemd", "user")
    return SYSTEM_TARGET_DIR
