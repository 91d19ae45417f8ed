"""``python -m procmgmt`` and the ``procmgmt`` console script.

Nothing heavy is imported before the interrupt handling is in place: a
Ctrl-C while the command line is still loading ends with "interrupted" and
exit status 130, never with a traceback.
"""

from __future__ import annotations

import sys

from procmgmt.interrupts import caused_by_interrupt


def run() -> int:
    """Import the command line and run it; an interrupt at any moment exits 130,
    also when Python wrapped it in another exception (see :mod:`procmgmt.interrupts`)."""
    try:
        from procmgmt.cli.main import main

        return main()
    except BaseException as exc:
        if isinstance(exc, SystemExit) or not caused_by_interrupt(exc):
            raise
        try:
            sys.stderr.write("procmgmt: interrupted\n")
            sys.stderr.flush()
        except (OSError, ValueError, KeyboardInterrupt):
            pass
        return 130


if __name__ == "__main__":
    raise SystemExit(run())
