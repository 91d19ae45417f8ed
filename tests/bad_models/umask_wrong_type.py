# expect: umask_wrong_type\.py:\d+  web\.umask: must be an octal number between 000 and 777, got 0\.5
from procmgmt import Process


def processes(settings):
    return {"web": Process(name="web", process="/bin/sleep", umask=0.5)}
