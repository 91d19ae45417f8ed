# expect: admin_socket_too_long\.py:\d+  web\.admin_socket_path: unix socket path is 1\d\d bytes, longer than the 107-byte limit
from procmgmt import Instance, Process


def processes(settings):
    sock = "/run/" + "s" * 110 + "/admin.sock"
    return {"web": Instance(Process(name="web", process="/bin/sleep"), admin_socket_path=sock)}
