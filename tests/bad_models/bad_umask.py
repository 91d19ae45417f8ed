# expect: bad_umask\.py:\d+  web\.umask: must be an octal number between 000 and 777, got '099'
from procmgmt import Process


def processes(settings):
    return {"web": Process(name="web", process="/bin/sleep", umask="099")}
