# expect: web\.overrides\.systemdd: unknown backend 'systemdd'
from procmgmt import Process


def processes(settings):
    return {"web": Process(name="web", process="/bin/sleep",
                           overrides={"systemdd": {"Service": {"Restart": "always"}}})}
