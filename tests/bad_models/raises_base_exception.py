# expect: raises_base_exception\.py:5: evaluating the model failed: BaseException: no processes today


def processes(settings):
    raise BaseException("no processes today")
