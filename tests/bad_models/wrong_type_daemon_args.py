# expect: wrong_type_daemon_args\.py:\d+  web\.daemon_args: must be a list of strings, got '-D'
from procmgmt import Process


def processes(settings):
    return {"web": Process(name="web", process="/bin/sleep", daemon_args="-D")}
