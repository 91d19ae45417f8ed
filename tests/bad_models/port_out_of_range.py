# expect: port_out_of_range\.py:\d+  web\.port: port must be an integer 1-65535, got 70000
from procmgmt import Instance, Process


def processes(settings):
    return {"web": Instance(Process(name="web", process="/bin/sleep"), port=70000)}
