# expect: readiness_nan_timeout\.py:\d+  web\.readiness\.timeout: must be a finite, positive number of seconds, got nan
# backend: supervisord
from procmgmt import Process
from procmgmt.readiness import TCP


def processes(settings):
    return {"web": Process(name="web", process="/bin/sleep",
                           readiness=TCP(port=40014, timeout=float("nan")))}
