# expect: misspelled_keyword\.py:8: evaluating the model failed: Process\(\) has no parameter 'foreground_proces'; did you mean 'foreground_process'\?
# expect: ^(?!.*TypeError)
from procmgmt import Process


def processes(settings):
    return {
        "web": Process(name="web",
                       foreground_proces="/bin/sleep"),
    }
