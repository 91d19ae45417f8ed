# expect: returns_list\.py: processes\(\) returned list, expected a dict
from procmgmt import Process


def processes(settings):
    return [Process(name="web", process="/bin/sleep")]
