# expect: port_wrong_type\.py:\d+  web\.port: port must be an integer 1-65535, got '8080'
from procmgmt import Instance, Process


def processes(settings):
    return {"web": Instance(Process(name="web", process="/bin/sleep"), port="8080")}
