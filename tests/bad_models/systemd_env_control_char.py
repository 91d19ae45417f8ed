# backend: systemd
# expect: systemd_env_control_char\.py:\d+  web\.environment\.BELL: systemd: value contains the control character
from procmgmt import Process


def processes(settings):
    return {"web": Process(name="web", process="/bin/sleep", environment={"BELL": "\a"})}
