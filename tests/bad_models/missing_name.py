# expect: missing_name\.py:\d+  web\.name: no process name was specified or can be inferred
from procmgmt import Process


def processes(settings):
    return {"web": Process(process="/bin/sleep")}
