# expect: relative_directory\.py:\d+  web\.directory: must be an absolute path, got 'srv/web'
from procmgmt import Process


def processes(settings):
    return {"web": Process(name="web", process="/bin/sleep", directory="srv/web")}
