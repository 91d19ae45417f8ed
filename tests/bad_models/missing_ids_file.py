# args: --ids {corpus}/_lib/no-such.ids
# expect: _lib/no-such\.ids: no such ids file
from procmgmt import Process


def processes(settings):
    return {"web": Process(name="web", process="/bin/sleep")}
