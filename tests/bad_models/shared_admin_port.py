# expect: shared_admin_port\.py:\d+  b\.admin_port: port 40016 is also used by instance 'a'
from procmgmt import Instance, Process


def processes(settings):
    return {
        "a": Instance(Process(name="a", process="/bin/sleep"), port=40016),
        "b": Instance(Process(name="b", process="/bin/sleep"), port=40017, admin_port=40016),
    }
