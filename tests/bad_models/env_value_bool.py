# expect: env_value_bool\.py:\d+  web\.environment\.DEBUG: value must be a string or a finite number, got True
from procmgmt import Process


def processes(settings):
    return {"web": Process(name="web", process="/bin/sleep", environment={"DEBUG": True})}
