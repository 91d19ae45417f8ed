# expect: os_exit\.py:6: evaluating the model failed: os\._exit\(0\) was called
import os


def processes(settings):
    os._exit(0)
