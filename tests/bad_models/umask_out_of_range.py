# expect: umask_out_of_range\.py:\d+  web\.umask: must be an octal number between 000 and 777, got 1023
from procmgmt import Process


def processes(settings):
    return {"web": Process(name="web", process="/bin/sleep", umask=0o1777)}
