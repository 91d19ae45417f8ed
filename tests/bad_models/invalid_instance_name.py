# expect: invalid_instance_name\.py:\d+  web\.instance_name: invalid name 'web 2'
from procmgmt import Process


def processes(settings):
    return {"web": Process(instance_name="web 2", process="/bin/sleep")}
