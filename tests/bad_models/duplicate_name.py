# expect: duplicate_name\.py:9  second\.name: process name 'web' is also used by instance 'first'
from procmgmt import Instance, Process


def processes(settings):
    return {
        "first": Instance(Process(name="web", process="/bin/sleep", pid_file="/tmp/a.pid"),
                          port=40001),
        "second": Instance(Process(name="web", process="/bin/sleep", pid_file="/tmp/b.pid"),
                           port=40002),
    }
