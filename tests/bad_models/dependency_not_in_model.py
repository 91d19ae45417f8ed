# expect: web\.dependencies: depends on process 'db', which is not an instance of this model
from procmgmt import Process


def processes(settings):
    db = Process(name="db", process="/bin/sleep")
    return {"web": Process(name="web", process="/bin/sleep", dependencies=[db])}
