# expect: wrong_type_nice\.py:\d+  web\.nice: must be an integer between -20 and 19, got 'high'
from procmgmt import Process


def processes(settings):
    return {"web": Process(name="web", process="/bin/sleep", nice="high")}
