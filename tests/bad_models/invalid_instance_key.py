# expect: invalid_instance_key\.py:\d+  my web: invalid instance name 'my web'
from procmgmt import Process


def processes(settings):
    return {"my web": Process(name="web", process="/bin/sleep")}
