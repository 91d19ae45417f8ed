# expect: systemd_function_override_unknown\.py:\d+  web\.overrides\.systemd: systemd: rendering failed: unknown systemd directive RestartSecs= in \[Service\]; did you mean RestartSec\b
# backend: systemd
from procmgmt import Process


def patch(unit):
    unit["Service"]["RestartSecs"] = "5"
    return unit


def processes(settings):
    return {"web": Process(name="web", process="/bin/sleep", args=["1000"],
                           overrides={"systemd": patch})}
