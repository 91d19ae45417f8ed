# expect: readiness_not_a_check\.py:\d+  web\.readiness: must be a readiness check such as TCP\(port=\.\.\.\)
from procmgmt import Process


def processes(settings):
    return {"web": Process(name="web", process="/bin/sleep", readiness="tcp:8080")}
