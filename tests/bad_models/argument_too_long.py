# expect: argument_too_long\.py:\d+  web\.foreground_process_args: an argument is 200001 bytes .*at most 131072 bytes \(MAX_ARG_STRLEN
from procmgmt import Process


def processes(settings):
    return {"web": Process(name="web", process="/bin/echo", args=["y" * 200_000])}
