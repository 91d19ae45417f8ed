# expect: name_trailing_newline\.py:\d+  web\.name: invalid name 'web\\n'
from procmgmt import Process


def processes(settings):
    return {"web": Process(name="web\n", process="/bin/sleep")}
