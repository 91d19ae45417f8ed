# expect: endless_recursion\.py:6: evaluating the model failed: RecursionError: maximum recursion depth exceeded
from procmgmt import Process


def webapp(port):
    return webapp(port + 1) if port else Process(name="web", process="/bin/sleep")


def processes(settings):
    return {"web": webapp(1)}
