# expect: nul_in_args\.py:\d+  web\.args: contains a NUL character, which no process manager can pass on
from procmgmt import Process


def processes(settings):
    return {"web": Process(name="web", process="/bin/sleep", args=["10\x000"])}
