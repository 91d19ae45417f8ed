# expect: wrong_type_args\.py:\d+  web\.args: must be a list of strings, got '--port 80'
from procmgmt import Process


def processes(settings):
    return {"web": Process(name="web", process="/bin/sleep", args="--port 80")}
