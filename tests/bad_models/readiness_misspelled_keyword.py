# expect: readiness_misspelled_keyword\.py:8: evaluating the model failed: TCP\(\) has no parameter 'prot'; did you mean 'port'\?
from procmgmt import Process
from procmgmt.readiness import TCP


def processes(settings):
    return {"web": Process(name="web", foreground_process="/bin/sleep",
                           readiness=TCP(prot=8080))}
