# expect: override_raises\.py:7  web\.overrides\.sysvinit: sysvinit: the override function failed: KeyError: 'no_such_key'
from procmgmt import Process


def patch(native):
    print("patching", native["name"])
    return {**native, "x": native["no_such_key"]}


def processes(settings):
    return {"web": Process(name="web", process="/bin/sleep", overrides={"sysvinit": patch})}
