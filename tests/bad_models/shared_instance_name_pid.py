# expect: shared_instance_name_pid\.py:\d+  b\.pid_file: pid file '.*/web\.pid' is also used by instance 'a'
from procmgmt import Process


def processes(settings):
    return {
        "a": Process(name="a", instance_name="web", process="/bin/sleep"),
        "b": Process(name="b", instance_name="web", process="/bin/sleep"),
    }
