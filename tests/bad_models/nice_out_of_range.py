# expect: nice_out_of_range\.py:\d+  web\.nice: must be an integer between -20 and 19, got 40
from procmgmt import Process


def processes(settings):
    return {"web": Process(name="web", process="/bin/sleep", nice=40)}
