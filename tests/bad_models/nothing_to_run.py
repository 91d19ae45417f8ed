# expect: nothing_to_run\.py:\d+  web\.process: nothing to run
from procmgmt import Process


def processes(settings):
    return {"web": Process(name="web")}
