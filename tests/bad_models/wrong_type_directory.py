# expect: wrong_type_directory\.py:\d+  web\.directory: must be a string, got int 123
from procmgmt import Process


def processes(settings):
    return {"web": Process(name="web", process="/bin/sleep", directory=123)}
