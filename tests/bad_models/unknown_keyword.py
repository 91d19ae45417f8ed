# expect: unknown_keyword\.py:6: evaluating the model failed: Process\(\) has no parameter 'comand' \(its parameters: name, description, initialize, process, .*\)
from procmgmt import Process


def processes(settings):
    return {"web": Process(name="web", comand="/bin/sleep")}
