# expect: readiness_inf_timeout\.py:\d+  web\.readiness\.timeout: must be a finite, positive number of seconds, got inf
from procmgmt import Process
from procmgmt.readiness import PidFile


def processes(settings):
    return {"web": Process(name="web", process="/bin/sleep", readiness=PidFile(timeout=float("inf")))}
