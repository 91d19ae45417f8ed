# expect: wrong_type_path\.py:\d+  web\.path: must be a list of strings, got '/opt/web/bin'
from procmgmt import Process


def processes(settings):
    return {"web": Process(name="web", process="/bin/sleep", path="/opt/web/bin")}
