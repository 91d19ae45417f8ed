# expect: readiness_bad_timeout\.py:\d+  web\.readiness\.timeout: must be a finite, positive number of seconds, got -5
from procmgmt import Process
from procmgmt.readiness import TCP


def processes(settings):
    return {"web": Process(name="web", process="/bin/sleep", readiness=TCP(port=40012, timeout=-5))}
