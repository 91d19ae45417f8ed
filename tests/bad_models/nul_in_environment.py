# expect: nul_in_environment\.py:\d+  web\.environment: contains a NUL character
from procmgmt import Process


def processes(settings):
    return {"web": Process(name="web", process="/bin/sleep", environment={"A": "x\x00y"})}
