# expect: liveness_empty_command\.py:\d+  web\.liveness\.check\.command: sysvinit: is empty
from procmgmt import Process
from procmgmt.readiness import Command, Liveness


def processes(settings):
    return {"web": Process(name="web", foreground_process="/bin/sleep",
                           foreground_process_args=["9"], restart="always",
                           liveness=Liveness(Command(command=[]), period=5))}
