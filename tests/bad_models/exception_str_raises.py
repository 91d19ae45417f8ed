# expect: exception_str_raises\.py:10: evaluating the model failed: Weird: \(its message cannot be shown


class Weird(Exception):
    def __str__(self):
        raise ValueError("no text")


def processes(settings):
    raise Weird()
