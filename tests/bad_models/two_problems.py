# expect: has 2 problems
# expect: web\.nice: must be an integer
# expect: db\.args: must be a list of strings
from procmgmt import Process


def processes(settings):
    return {"web": Process(name="web", process="/bin/sleep", nice=99),
            "db": Process(name="db", process="/bin/sleep", args=[1, 2])}
