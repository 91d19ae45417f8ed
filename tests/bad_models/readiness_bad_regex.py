# expect: readiness_bad_regex\.py:\d+  web\.readiness\.pattern: invalid regular expression
from procmgmt import Process
from procmgmt.readiness import LogLine


def processes(settings):
    return {"web": Process(name="web", process="/bin/sleep",
                           readiness=LogLine(path="/tmp/web.log", pattern="listening on ([0-9]+"))}
