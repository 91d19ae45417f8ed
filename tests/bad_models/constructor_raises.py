# expect: constructor_raises\.py:7: evaluating the model failed: ValueError: port must be positive
from procmgmt import Process


def webapp(port):
    if port <= 0:
        raise ValueError("port must be positive")
    return Process(name="web", process="/bin/sleep")


def processes(settings):
    return {"web": webapp(-1)}
