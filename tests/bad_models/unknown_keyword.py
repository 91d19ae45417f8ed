# expect: unknown_keyword\.py:6: evaluating the model failed: TypeError: .*unexpected keyword argument 'comand'
from procmgmt import Process


def processes(settings):
    return {"web": Process(name="web", comand="/bin/sleep")}
