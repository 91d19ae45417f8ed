# backend: process-compose
# expect: liveness_pidfile_native\.py:\d+  web\.liveness\.check: process-compose: PidFile\(\) names the process's own pid file, which nothing writes here: give it a path
from procmgmt import Process
from procmgmt.readiness import Liveness, PidFile


def processes(settings):
    return {"web": Process(name="web", foreground_process="/bin/sleep",
                           foreground_process_args=["9"], restart="always",
                           liveness=Liveness(PidFile(), period=5))}
