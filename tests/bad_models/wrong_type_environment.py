# expect: wrong_type_environment\.py:\d+  web\.environment: must be a dict of name -> value, got list
from procmgmt import Process


def processes(settings):
    return {"web": Process(name="web", process="/bin/sleep", environment=["PORT=80"])}
