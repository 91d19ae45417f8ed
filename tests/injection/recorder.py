"""Record this process's argv, environment and working directory, then stay up or exit.

Started by the injection tests through a real backend as
``python recorder.py ARG...``. It writes one JSON object to the file named
by ``RECORDER_OUT`` (written to a temporary name and renamed, so a reader
never sees half a record)::

    {"argv": [ARG, ...], "env": {...}, "cwd": "...", "pid": N}

``argv`` leaves out the interpreter and this file: it is exactly the
argument list the model gave. Bytes that are not valid UTF-8 are kept as
surrogate escapes and written with ``\\udcXX`` escapes, so a mangled value
shows up as a difference instead of a crash.

``RECORDER_MODE`` says what happens next:

``stay`` (default)
    keep running until SIGTERM or SIGINT (a foreground process).
``exit``
    exit 0 at once.
``daemon``
    fork, let the parent exit 0 and have the child write its pid to the
    file named by ``RECORDER_PID_FILE`` (and the record), then stay up:
    a classic self-daemonizing process.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time


def record(path: str) -> None:
    """Write the record atomically."""
    data = {
        "argv": sys.argv[1:],
        "env": dict(os.environ),
        "cwd": os.getcwd(),
        "pid": os.getpid(),
    }
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w", encoding="utf-8", errors="surrogateescape") as f:
        json.dump(data, f, ensure_ascii=True)
    os.replace(tmp, path)


def stay() -> None:
    """Sleep until SIGTERM/SIGINT, then exit 0."""
    def stop(signum: int, frame: object) -> None:
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    while True:
        time.sleep(3600)


def main() -> int:
    """Record, then behave as ``RECORDER_MODE`` says."""
    out = os.environ.get("RECORDER_OUT")
    if not out:
        print("recorder: RECORDER_OUT is not set", file=sys.stderr)
        return 2
    mode = os.environ.get("RECORDER_MODE", "stay")
    if mode == "daemon":
        if os.fork() > 0:
            return 0
        os.setsid()
        pid_file = os.environ["RECORDER_PID_FILE"]
        record(out)
        tmp = f"{pid_file}.tmp"
        with open(tmp, "w", encoding="ascii") as f:
            f.write(f"{os.getpid()}\n")
        os.replace(tmp, pid_file)
        stay()
    record(out)
    if mode == "exit":
        return 0
    stay()
    return 0


if __name__ == "__main__":
    sys.exit(main())
