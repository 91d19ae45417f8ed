"""Two processes whose readiness s6-notifyoncheck polls through data/check: ``logger``
writes its ready line to its own log file after a second (LogLine), ``pidder`` (needs
``logger``) is ready when its pid file names it (PidFile: the start script writes
it for a foreground program)."""

from procmgmt import Process
from procmgmt.readiness import LogLine, PidFile


def processes(settings):
    log = f"{settings.state_dir}/logger-own.log"
    logger = Process(
        name="logger", foreground_process="/bin/sh",
        foreground_process_args=["-c", 'echo starting >> "$1"; sleep 1; '
                                 'echo "accepting connections" >> "$1"; exec sleep 1000',
                                 "logger", log],
        readiness=LogLine(path=log, pattern="^accepting connections", timeout=20))
    pidder = Process(name="pidder", foreground_process="/bin/sleep",
                     foreground_process_args=["1000"], readiness=PidFile(timeout=20),
                     dependencies=[logger])
    return {"logger": logger, "pidder": pidder}
