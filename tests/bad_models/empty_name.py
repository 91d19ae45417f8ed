# expect: empty_name\.py:\d+  web\.name: invalid name ''
from procmgmt import Process


def processes(settings):
    return {"web": Process(name="", process="/bin/sleep")}
