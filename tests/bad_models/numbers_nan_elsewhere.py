# expect: web\.nice: must be an integer between -20 and 19, got nan
# expect: web\.umask: must be an octal number between 000 and 777, got nan
# expect: web\.readiness\.port: must be a port number 1-65535, got inf
from procmgmt import Instance, Process
from procmgmt.readiness import TCP

NAN = float("nan")


def processes(settings):
    web = Process(name="web", process="/bin/sleep", nice=NAN, umask=NAN,
                  readiness=TCP(port=float("inf")))
    return {"web": Instance(web)}
