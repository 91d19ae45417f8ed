# expect: name_with_slash\.py:\d+  web\.name: invalid name 'web/1'
from procmgmt import Process


def processes(settings):
    return {"web": Process(name="web/1", process="/bin/sleep")}
