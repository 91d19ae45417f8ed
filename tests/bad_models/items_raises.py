# expect: items_raises\.py:8: evaluating the model failed: RuntimeError: items\(\) is broken
from procmgmt import Process


class Broken(dict):
    def items(self):
        print("items() called")
        raise RuntimeError("items() is broken")


def processes(settings):
    return Broken(web=Process(name="web", process="/bin/sleep"))
