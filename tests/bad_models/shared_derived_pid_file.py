# expect: shared_derived_pid_file\.py:\d+  b\.pid_file: pid file '.*/a\.pid' is also used by instance 'a'
import os

from procmgmt import Process


def processes(settings):
    # b names the pid file that a gets by default.
    return {
        "a": Process(name="a", process="/bin/sleep"),
        "b": Process(name="b", daemon="/bin/true",
                     pid_file=os.path.join(settings.runtime_dir, "a.pid")),
    }
