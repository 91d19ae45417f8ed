# expect: syntax_error\.py:5: syntax error: expected .:.
from procmgmt import Process


def processes(settings)
    return {"web": Process(name="web", process="/bin/sleep")}
