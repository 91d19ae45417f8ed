# backend: systemd
# expect: systemd_directory_newline\.py:\d+  web\.directory: systemd: '/srv/web\\ndata' contains a line break
from procmgmt import Process


def processes(settings):
    return {"web": Process(name="web", process="/bin/sleep", directory="/srv/web\ndata")}
