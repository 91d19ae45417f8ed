# expect: model_hangs\.py:9: evaluating the model failed: did not finish within 0\.3 s
# expect: --model-timeout or PROCMGMT_MODEL_TIMEOUT
# args: --model-timeout 0.3
import time


def processes(settings):
    while True:
        time.sleep(3600)
