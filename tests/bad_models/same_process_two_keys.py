# expect: same_process_two_keys\.py:\d+  web2: is the same process object as instance 'web1'
from procmgmt import Instance, Process


def processes(settings):
    web = Process(name="web", process="/bin/sleep")
    return {"web1": Instance(web, port=40014), "web2": Instance(web, port=40015)}
