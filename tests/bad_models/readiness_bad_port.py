# expect: readiness_bad_port\.py:\d+  web\.readiness\.port: must be a port number 1-65535, got 70000
from procmgmt import Process
from procmgmt.readiness import TCP


def processes(settings):
    return {"web": Process(name="web", process="/bin/sleep", readiness=TCP(port=70000))}
