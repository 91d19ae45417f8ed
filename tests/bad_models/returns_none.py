# expect: returns_none\.py: processes\(\) returned NoneType, expected a dict
from procmgmt import Process


def processes(settings):
    {"web": Process(name="web", process="/bin/sleep")}  # forgot the return
