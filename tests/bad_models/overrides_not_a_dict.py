# expect: overrides_not_a_dict\.py:\d+  web\.overrides: must be a dict of backend name -> dict or function
from procmgmt import Process


def processes(settings):
    return {"web": Process(name="web", process="/bin/sleep", overrides=["systemd"])}
