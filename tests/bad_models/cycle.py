# expect: cycle\.py:\d+  a\.dependencies: dependency cycle: a -> c -> b -> a
from procmgmt import Process


def processes(settings):
    a = Process(name="a", process="/bin/sleep", args=["100"])
    b = Process(name="b", process="/bin/sleep", args=["100"], dependencies=[a])
    c = Process(name="c", process="/bin/sleep", args=["100"], dependencies=[b])
    object.__setattr__(a, "dependencies", [c])
    return {"a": a, "b": b, "c": c}
