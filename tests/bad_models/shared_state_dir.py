# expect: shared_state_dir\.py:\d+  b\.state_dir: directory '/srv/data' is also used by instance 'a'
from procmgmt import Instance, Process


def processes(settings):
    return {
        "a": Instance(Process(name="a", process="/bin/sleep"), state_dir="/srv/data"),
        "b": Instance(Process(name="b", process="/bin/sleep"), state_dir="/srv/data/"),
    }
