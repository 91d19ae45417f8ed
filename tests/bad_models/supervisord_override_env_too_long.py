# expect: supervisord_override_env_too_long\.py:\d+  web\.overrides\.supervisord: supervisord: rendering failed: environment= is \d+ characters, more than the 65536
# backend: supervisord
from procmgmt import Process


def patch(native):
    native["environment"] = {**native["environment"], "BIG": "x" * 100_000}
    return native


def processes(settings):
    return {"web": Process(name="web", process="/bin/sleep", args=["1000"],
                           overrides={"supervisord": patch})}
