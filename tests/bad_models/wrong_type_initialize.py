# expect: wrong_type_initialize\.py:\d+  web\.initialize: must be a string, got list
from procmgmt import Process


def processes(settings):
    return {"web": Process(name="web", process="/bin/sleep", initialize=["mkdir", "-p", "/srv"])}
