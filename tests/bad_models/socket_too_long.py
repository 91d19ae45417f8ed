# expect: db\.socket: unix socket path is 1\d\d bytes, longer than the 107-byte limit
from procmgmt import Instance, Process


def processes(settings):
    sock = "/run/" + "x" * 120 + "/db.sock"
    return {"db": Instance(Process(name="db", process="/bin/sleep"), socket=sock)}
