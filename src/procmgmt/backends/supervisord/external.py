"""Deploying into a supervisord that procmgmt did not start (``PROCMGMT_SUPERVISORD_CONF``).

Deploying into an existing supervisord (the original's ``SUPERVISORD_CONF_DIR``,
e.g. one deployed as a sysvinit process from :mod:`procmgmt.services.supervisord`):
set ``PROCMGMT_SUPERVISORD_CONF`` to the path of its config file. The socket is
read from ``[unix_http_server] file=``, the include dir from ``[include] files=``
(the first pattern naming a directory of ``*.conf`` files): program files are
linked there and proxies into ``bin/`` next to it (where ``%(here)s/../bin``
points). That supervisord must be running (an error otherwise); procmgmt never
starts or shuts it down, and only touches the links it recorded as its own
(``<procmgmt_dir>/supervisord/<profile>/external.json``, which also remembers
the config for later switches of the profile until it is undeployed). Everything
else is as usual: ``reloadConfig``, groups added and removed in dependency order,
generations, rollback, undeploy (the groups go, supervisord stays).
"""

from __future__ import annotations

import configparser
import fnmatch
import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from procmgmt import fsutil
from procmgmt.backends.supervisord.control import UNIX_PATH_MAX
from procmgmt.backends.supervisord.format import SAFE_WORD
from procmgmt.errors import UsageError
from procmgmt.settings import SettingField

#: Environment variable naming the config file of a running supervisord to deploy
#: into (the original's ``SUPERVISORD_CONF_DIR``) instead of procmgmt's own one.
EXTERNAL_CONF_ENV = "PROCMGMT_SUPERVISORD_CONF"
#: The backend's own settings (environment variables, listed by ``--help``).
EXTERNAL_CONF_SETTING = SettingField(
    "supervisord_conf", None, EXTERNAL_CONF_ENV, "path",
    "the config file of a running supervisord to deploy into, instead of procmgmt's own")
SETTINGS = (EXTERNAL_CONF_SETTING,)


@dataclass(frozen=True)
class ExternalSupervisord:
    """What procmgmt needs from the config file of a supervisord it did not start."""

    conf: str
    socket: str
    #: Directory of the ``[include] files=`` glob the program files go into.
    include_dir: str
    #: The glob's file-name part (``*.conf``): each ``<name>.conf`` must match it.
    pattern: str

    @property
    def bin_dir(self) -> str:
        """Proxies: ``bin/`` next to the include dir (``%(here)s/../bin``)."""
        return os.path.join(os.path.dirname(self.include_dir), "bin")


def _unescape_glob(text: str) -> str | None:
    """``glob.escape`` undone (``[*]`` -> ``*``); None when a real wildcard remains."""
    plain = re.sub(r"\[(.)\]", r"\1", text)
    stripped = re.sub(r"\[.\]", "", text)
    return None if any(c in stripped for c in "*?[") else plain


def read_external_config(path: str) -> ExternalSupervisord:
    """Socket and include dir of a supervisord config, read the way supervisord reads
    them: inline ``;``/``#`` comments, ``%(here)s`` (the config's directory) and
    ``%(ENV_X)s`` expanded, include globs relative to the config's directory."""
    conf = os.path.abspath(path)
    here = os.path.dirname(conf)
    parser = configparser.RawConfigParser(inline_comment_prefixes=(";", "#"), strict=False)
    try:
        with open(conf, encoding="utf-8") as f:
            parser.read_file(f)
    except (OSError, UnicodeDecodeError, configparser.Error) as exc:
        raise UsageError(f"{EXTERNAL_CONF_ENV}={path}: cannot read it as a supervisord "
                         f"config: {exc}") from None
    expansions = {"here": here, "host_node_name": os.uname().nodename,
                  **{f"ENV_{k}": v for k, v in os.environ.items()}}

    def get(section: str, key: str) -> str:
        if not parser.has_option(section, key):
            raise UsageError(f"{EXTERNAL_CONF_ENV}={path}: no [{section}] {key}=; procmgmt "
                             "needs the control socket and an include dir to deploy into")
        raw = parser.get(section, key).replace("%(here)s", here)
        try:
            return raw % expansions
        except (KeyError, ValueError, TypeError) as exc:
            raise UsageError(f"{EXTERNAL_CONF_ENV}={path}: [{section}] {key}={raw!r}: "
                             f"cannot expand {exc}") from None

    socket = os.path.join(here, os.path.expanduser(get("unix_http_server", "file")))
    for pattern in get("include", "files").split():
        full = os.path.join(here, pattern)
        directory = _unescape_glob(os.path.dirname(full))
        name_glob = os.path.basename(full)
        if directory is not None and fnmatch.fnmatchcase("procmgmt-program.conf", name_glob):
            return ExternalSupervisord(conf, os.path.normpath(socket),
                                       os.path.normpath(directory), name_glob)
    raise UsageError(f"{EXTERNAL_CONF_ENV}={path}: no [include] files= pattern names a "
                     "directory of '*.conf' files procmgmt could put program files into")


def bind(conf: str | None, record: dict[str, Any], profile: str) -> ExternalSupervisord | None:
    """The external supervisord a profile deploys into: the one asked for (``conf``),
    else the one its programs were deployed into (``record``), else None (its own).
    A profile never has programs in two supervisords at once."""
    recorded = record.get("conf") if record.get("names") else None
    if conf is None and recorded is None:
        return None
    if conf is not None and recorded is not None \
            and os.path.abspath(conf) != os.path.abspath(str(recorded)):
        raise UsageError(
            f"profile {profile} has programs in the supervisord of "
            f"{recorded}, not {conf}: undeploy them there first (with "
            f"{EXTERNAL_CONF_ENV}={recorded})")
    ext = read_external_config(conf if conf is not None else str(recorded))
    if not SAFE_WORD.fullmatch(ext.include_dir):
        raise UsageError(
            f"include dir {ext.include_dir!r} of {ext.conf} contains characters "
            "supervisord cannot use unquoted in %(here)s (spaces, quotes, %)")
    if len(os.fsencode(ext.socket)) > UNIX_PATH_MAX:
        raise UsageError(f"supervisord socket path {ext.socket!r} is too long")
    return ext


def read_record(path: str) -> dict[str, Any]:
    """The record of which links in an external include dir are ours ({} if none)."""
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def write_record(path: str, ext: ExternalSupervisord, names: Sequence[str]) -> None:
    """Record ``names`` as this profile's programs in ``ext`` (its directory exists)."""
    fsutil.ensure_dir(os.path.dirname(path))
    fsutil.write_atomic(path, json.dumps({"conf": ext.conf, "names": sorted(names)}),
                        fsutil.PRIVATE)
