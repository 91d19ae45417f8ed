# expect: shared_port\.py:\d+  b\.port: port 40001 is also used by instance 'a'
from procmgmt import Instance, Process


def processes(settings):
    return {
        "a": Instance(Process(name="a", process="/bin/sleep"), port=40001),
        "b": Instance(Process(name="b", process="/bin/sleep"), port=40001),
    }
