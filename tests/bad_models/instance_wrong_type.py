# expect: instance_wrong_type\.py: instance 'web' is a str, expected Instance\(process, \.\.\.\) or a Process
from procmgmt import Process


def processes(settings):
    return {"web": "/bin/sleep"}
