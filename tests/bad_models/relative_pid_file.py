# expect: relative_pid_file\.py:\d+  web\.pid_file: must be an absolute path, got 'run/web\.pid'
from procmgmt import Process


def processes(settings):
    return {"web": Process(name="web", daemon="/bin/true", pid_file="run/web.pid")}
