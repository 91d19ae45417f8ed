# expect: env_key_with_equals\.py:\d+  web\.environment: invalid variable name 'A=B'
from procmgmt import Process


def processes(settings):
    return {"web": Process(name="web", process="/bin/sleep", environment={"A=B": "x"})}
