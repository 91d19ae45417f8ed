# expect: shared_data_dir_unnormalized\.py:\d+  b\.data_dir: directory '/srv/data' is also used by instance 'a'
from procmgmt import Instance, Process


def processes(settings):
    return {
        "a": Instance(Process(name="a", process="/bin/sleep"), data_dir="/srv/data"),
        "b": Instance(Process(name="b", process="/bin/sleep"), data_dir="/srv/x/../data"),
    }
