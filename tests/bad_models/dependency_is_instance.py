# expect: dependency_is_instance\.py:\d+  web\.dependencies: contains an Instance: pass its \.process instead
from procmgmt import Instance, Process


def processes(settings):
    db = Instance(Process(name="db", process="/bin/sleep"), port=40011)
    return {"db": db,
            "web": Instance(Process(name="web", process="/bin/sleep", dependencies=[db]))}
