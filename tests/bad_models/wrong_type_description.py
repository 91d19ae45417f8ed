# expect: wrong_type_description\.py:\d+  web\.description: must be a string, got dict
from procmgmt import Process


def processes(settings):
    return {"web": Process(name="web", process="/bin/sleep", description={"en": "Web"})}
