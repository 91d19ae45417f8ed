# expect: dependency_by_name\.py:\d+  web\.dependencies: must reference Process objects, not 'db'
from procmgmt import Process


def processes(settings):
    db = Process(name="db", process="/bin/sleep")
    return {"db": db, "web": Process(name="web", process="/bin/sleep", dependencies=["db"])}
