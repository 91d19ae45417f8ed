# expect: wrong_type_user\.py:\d+  web\.user: must be a string, got int 0
from procmgmt import Process


def processes(settings):
    return {"web": Process(name="web", process="/bin/sleep", user=0)}
