# backend: supervisord
# expect: supervisord_env_newline\.py:\d+  web\.environment\.MOTD: supervisord: value of MOTD contains a line break, which a supervisord config value cannot hold
from procmgmt import Process


def processes(settings):
    return {"web": Process(name="web", foreground_process="/bin/sleep", args=["100"],
                           environment={"MOTD": "hello\nworld"})}
