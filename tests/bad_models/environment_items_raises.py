# expect: environment_items_raises\.py:7: evaluating the model failed: LookupError: no variables
from procmgmt import Process


class Environment(dict):
    def items(self):
        raise LookupError("no variables")


def processes(settings):
    return {"web": Process(name="web", process="/bin/sleep", environment=Environment(A="1"))}
