# expect: env_value_too_long\.py:\d+  web\.environment\.BIG: BIG=\.\.\. is 3000005 bytes; one environment entry can be at most 131072 bytes \(MAX_ARG_STRLEN of Linux execve\)
# backend: supervisord
from procmgmt import Process


def processes(settings):
    return {"web": Process(name="web", process="/bin/sleep", args=["1000"],
                           environment={"BIG": "x" * 3_000_000})}
