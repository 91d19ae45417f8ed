# expect: supervisord_env_too_long\.py:\d+  web\.environment: supervisord: is about \d+ characters in supervisord's environment=, more than the 65536
# backend: supervisord
from procmgmt import Process


def processes(settings):
    env = {"A": "a" * 40_000, "B": "b" * 40_000}
    return {"web": Process(name="web", process="/bin/sleep", args=["1000"], environment=env)}
