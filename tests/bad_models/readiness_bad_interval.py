# expect: readiness_bad_interval\.py:\d+  web\.readiness\.interval: must be a finite, positive number of seconds, got 0
# expect: readiness_bad_interval\.py:\d+  db\.readiness\.interval: must be a finite, positive number of seconds, got nan
# expect: readiness_bad_interval\.py:\d+  db\.readiness\.timeout: must be a finite, positive number of seconds, got True
from procmgmt import Process
from procmgmt.readiness import TCP


def processes(settings):
    return {
        "web": Process(name="web", process="/bin/sleep", readiness=TCP(port=40015, interval=0)),
        "db": Process(name="db", process="/bin/sleep",
                      readiness=TCP(port=40016, interval=float("nan"), timeout=True)),
    }
