# expect: env_reserved_name\.py:\d+  web\.environment: variable name 'procmgmt_pidfile' is reserved
# expect: env_reserved_name\.py:\d+  web\.environment: variable name 'IFS' is reserved
from procmgmt import Process


def processes(settings):
    return {"web": Process(name="web", process="/bin/sleep",
                           environment={"procmgmt_pidfile": "/tmp/x", "IFS": ":"})}
