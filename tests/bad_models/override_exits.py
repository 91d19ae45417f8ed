# expect: override_exits\.py:8  web\.overrides\.sysvinit: sysvinit: the override function failed: sys\.exit\(3\) was called
import sys

from procmgmt import Process


def patch(native):
    sys.exit(3)


def processes(settings):
    return {"web": Process(name="web", process="/bin/sleep", overrides={"sysvinit": patch})}
