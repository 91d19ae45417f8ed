# expect: bad_reload_signal\.py:\d+  web\.reload_signal: must be one of HUP, USR1, .* got 'SIGBOGUS'
from procmgmt import Process


def processes(settings):
    return {"web": Process(name="web", process="/bin/sleep", reload_signal="SIGBOGUS")}
