# expect: empty_daemon\.py:\d+  web\.daemon: must be a non-empty string \(an executable\), got ''
from procmgmt import Process


def processes(settings):
    return {"web": Process(name="web", daemon="", pid_file="/tmp/web.pid")}
