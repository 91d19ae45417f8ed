"""How errors look: one clear line per problem for users, a debug log for bugs.

User mistakes (:class:`UserError`) exit 2, deployment failures 1; neither
shows a traceback. An unexpected exception is a bug in procmgmt: its
traceback goes to a debug log whose path is printed, and the exit is 70.
"""

from __future__ import annotations

import os
import sys
import tempfile
import traceback
from collections.abc import Callable

from procmgmt.errors import ProcmgmtError, ValidationError, storage_error
from procmgmt.interrupts import caused_by_interrupt

EXIT_INTERNAL = 70


def run_guarded(fn: Callable[[], int]) -> int:
    """Run ``fn`` and turn exceptions into messages and exit codes."""
    try:
        return fn()
    except ValidationError as exc:
        print(f"procmgmt: the model has {len(exc.problems)} problem"
              f"{'s' if len(exc.problems) != 1 else ''}:", file=sys.stderr)
        for p in exc.problems:
            print(f"  {p}", file=sys.stderr)
        return exc.exit_code
    except ProcmgmtError as exc:
        for line in str(exc).splitlines() or [type(exc).__name__]:
            print(f"procmgmt: error: {line}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("procmgmt: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 1
    except OSError as exc:
        # Not a bug: a full disk, a read-only file system, a permission. Say which
        # path and why, as a StorageError would (no traceback, no "internal error").
        print(f"procmgmt: error: {storage_error(exc)}", file=sys.stderr)
        return 1
    except Exception as exc:
        if caused_by_interrupt(exc):
            print("procmgmt: interrupted", file=sys.stderr)
            return 130
        fd, path = tempfile.mkstemp(prefix="procmgmt-debug-", suffix=".log")
        with os.fdopen(fd, "w") as log:
            traceback.print_exc(file=log)
        print(f"procmgmt: internal error: {sys.exc_info()[1]!r}\n"
              f"procmgmt: the traceback is in {path}; please report it", file=sys.stderr)
        return EXIT_INTERNAL
