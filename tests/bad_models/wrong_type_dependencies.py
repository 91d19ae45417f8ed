# expect: wrong_type_dependencies\.py:\d+  web\.dependencies: must be a list of Process objects
from procmgmt import Process


def processes(settings):
    db = Process(name="db", process="/bin/sleep")
    return {"db": db, "web": Process(name="web", process="/bin/sleep", dependencies=db)}
