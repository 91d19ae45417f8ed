# expect: invalid_name\.py:\d+  web\.name: invalid name 'my web'
from procmgmt import Process


def processes(settings):
    return {"web": Process(name="my web", process="/bin/sleep")}
