# backend: launchd
# expect: liveness_refused_by_backend\.py:\d+  web\.liveness: launchd: cannot carry a liveness check: leave it unset, or see which backends can in docs/backends\.md
from procmgmt import Process
from procmgmt.readiness import HTTP, Liveness


def processes(settings):
    return {"web": Process(name="web", foreground_process="/bin/sleep",
                           foreground_process_args=["9"], restart="always",
                           liveness=Liveness(HTTP(url="http://127.0.0.1:8080/health")))}
