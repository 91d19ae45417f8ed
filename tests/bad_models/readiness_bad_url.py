# expect: readiness_bad_url\.py:\d+  web\.readiness\.url: must be an http:// or https:// URL, got 'localhost:8080'
from procmgmt import Process
from procmgmt.readiness import HTTP


def processes(settings):
    return {"web": Process(name="web", process="/bin/sleep", readiness=HTTP(url="localhost:8080"))}
