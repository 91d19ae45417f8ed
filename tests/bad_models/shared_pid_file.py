# expect: shared_pid_file\.py:\d+  b\.pid_file: pid file '/tmp/same\.pid' is also used by instance 'a'
from procmgmt import Process


def processes(settings):
    return {
        "a": Process(name="a", daemon="/bin/true", pid_file="/tmp/same.pid"),
        "b": Process(name="b", daemon="/bin/true", pid_file="/tmp/same.pid"),
    }
