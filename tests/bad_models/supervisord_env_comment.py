# backend: supervisord
# expect: supervisord_env_comment\.py:\d+  web\.environment\.OPTS: supervisord: value of OPTS contains ' ;'
from procmgmt import Process


def processes(settings):
    return {"web": Process(name="web", foreground_process="/bin/sleep", args=["100"],
                           environment={"OPTS": "-a ;-b"})}
