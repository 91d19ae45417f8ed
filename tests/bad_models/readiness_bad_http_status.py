# expect: readiness_bad_http_status\.py:\d+  web\.readiness\.status: must be an HTTP status code 100-599, got 200\.5
from procmgmt import Process
from procmgmt.readiness import HTTP


def processes(settings):
    return {"web": Process(name="web", process="/bin/sleep",
                           readiness=HTTP(url="http://127.0.0.1:40017/", status=200.5))}
