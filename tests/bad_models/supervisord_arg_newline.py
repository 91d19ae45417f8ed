# backend: supervisord
# expect: supervisord_arg_newline\.py:\d+  web\.foreground_process_args: supervisord: argument 'a\\nb' contains a line break
from procmgmt import Process


def processes(settings):
    return {"web": Process(name="web", foreground_process="/bin/echo", args=["a\nb"])}
