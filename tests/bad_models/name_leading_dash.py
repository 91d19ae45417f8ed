# expect: name_leading_dash\.py:\d+  web\.name: invalid name '-web'
from procmgmt import Process


def processes(settings):
    return {"web": Process(name="-web", process="/bin/sleep")}
