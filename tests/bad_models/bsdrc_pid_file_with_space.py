# backend: bsdrc
# expect: bsdrc_pid_file_with_space\.py:\d+  web\.pid_file: bsdrc: '/var/run/my web\.pid' contains characters rc\.subr would split
from procmgmt import Process


def processes(settings):
    return {"web": Process(name="web", daemon="/bin/true", pid_file="/var/run/my web.pid")}
