# expect: self_dependency\.py:\d+  a\.dependencies: a process cannot depend on itself
from procmgmt import Process


def processes(settings):
    a = Process(name="a", process="/bin/sleep")
    object.__setattr__(a, "dependencies", [a])
    return {"a": a}
