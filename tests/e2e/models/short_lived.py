"""One process that runs 1 s and then fails, for tests/e2e/test_start_grace.py."""

from procmgmt import Process


def processes(settings):
    brief = Process(name="brief", foreground_process="/bin/sh",
                    foreground_process_args=["-c", "sleep 1; exit 1", "brief"], restart="no")
    return {"brief": brief}
