# expect: env_value_nan\.py:\d+  web\.environment\.WORKERS: value must be a string or a finite number, got nan
from procmgmt import Process


def processes(settings):
    return {"web": Process(name="web", process="/bin/sleep",
                           environment={"WORKERS": float("nan")})}
