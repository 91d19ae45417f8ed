"""Shell building blocks for ``initialize`` snippets that fail when a step fails.

Backends run ``initialize`` where ``set -e`` has no effect (the sysvinit
script calls it as ``if ! procmgmt_initialize``, which disables ``-e`` for
everything inside). A snippet written as separate lines would therefore
carry on after a failed ``initdb`` and start a server on a half-made data
directory. Every helper here returns *one* command (a ``&&`` list or a
compound command), and :func:`chain` joins them with ``&&``, so the
snippet's exit status is that of the first failing step.
"""

from __future__ import annotations

import shlex

from procmgmt.services import _common


def chain(*steps: str | None) -> str:
    """``steps`` joined with ``&&`` (empty and None steps are left out)."""
    return " &&\n".join(s for s in steps if s)


def make_dirs(*paths: str, owner: str | None = None, mode: str = "0750") -> str:
    """:func:`_common.mkdirs` as one ``&&`` list (its lines are simple commands)."""
    return _common.mkdirs(*paths, owner=owner, mode=mode).replace("\n", " &&\n")


#: Atomic rewrite of a generated file (temp file + ``mv``), one ``&&`` list.
write_file = _common.write_file


def once(marker: str, command: str) -> str:
    """Run ``command`` only when ``marker`` is missing; the status of ``command`` otherwise 0."""
    return _common.once(marker, command)


def logged(command: str, log_file: str) -> str:
    """Run ``command`` with its output in ``log_file``; on failure show the log and fail.

    For chatty one-time tools (``mariadb-install-db``): their output stays
    out of the switch log unless something went wrong.
    """
    q = shlex.quote(log_file)
    return f"{{ {command} > {q} 2>&1 || {{ cat {q} >&2; false; }}; }}"


def check_mode(mode: str | None) -> None:
    """Constructors take ``mode=None`` (the process manager picks), "foreground" or "daemon"."""
    if mode not in (None, "foreground", "daemon"):
        raise ValueError(f"mode must be None, 'foreground' or 'daemon', got {mode!r}")
