# expect: override_is_string\.py:\d+  web\.overrides\.systemd: must be a dict \(merged\) or a function \(replaces\)
from procmgmt import Process


def processes(settings):
    return {"web": Process(name="web", process="/bin/sleep",
                           overrides={"systemd": "Restart=always"})}
