# args: --ids {corpus}/_lib/not-json.ids
# expect: _lib/not-json\.ids:1:3: the ids file is not valid JSON
from procmgmt import Process


def processes(settings):
    return {"web": Process(name="web", process="/bin/sleep")}
