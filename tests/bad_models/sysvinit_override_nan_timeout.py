# expect: sysvinit_override_nan_timeout\.py:\d+  web\.overrides\.sysvinit: sysvinit: rendering failed: stop_timeout must be a finite, non-negative number of seconds, got nan
# backend: sysvinit
from procmgmt import Process


def processes(settings):
    return {"web": Process(name="web", process="/bin/sleep",
                           overrides={"sysvinit": {"stop_timeout": float("nan")}})}
