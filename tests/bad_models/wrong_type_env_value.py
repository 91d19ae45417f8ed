# expect: wrong_type_env_value\.py:\d+  web\.environment\.DEBUG: value must be a string or a finite number, got None
from procmgmt import Process


def processes(settings):
    return {"web": Process(name="web", process="/bin/sleep", environment={"DEBUG": None})}
