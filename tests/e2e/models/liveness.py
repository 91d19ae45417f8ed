"""A process that stops answering, for tests/e2e/test_liveness.py.

``server`` listens on ``port`` (extra param) and answers every connection;
on SIGUSR1 it closes its listening socket and keeps running, hung as far as
anyone connecting can tell; SIGHUP (its reload signal) prints "reloaded". Its
liveness check (TCP, every 0.3 s after a 2-s delay, 2 failures) must then kill
it, and its restart policy start it again: a new PID answers. The delay keeps
a slow start (a loaded machine) from counting as a failure.
"""

from procmgmt import Process
from procmgmt.readiness import TCP, Liveness

#: One line (supervisord's command= holds no line break); iter(int, 1) never ends.
SERVER = ("import signal, socket, sys, time; s = socket.socket(); "
          "s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); "
          "s.bind(('127.0.0.1', int(sys.argv[1]))); s.listen(16); "
          "signal.signal(signal.SIGHUP, lambda *_: print('reloaded', flush=True)); "
          "signal.signal(signal.SIGUSR1, lambda *_: (s.close(), print('hanging', flush=True), "
          "[time.sleep(60) for _ in iter(int, 1)])); print('listening', flush=True); "
          "[s.accept()[0].close() for _ in iter(int, 1)]")


def processes(settings):
    port = settings.extra_params["port"]
    server = Process(name="server", foreground_process="python3",
                     foreground_process_args=["-c", SERVER, str(port)],
                     restart="always", reload_signal="HUP", readiness=TCP(port=port),
                     liveness=Liveness(TCP(port=port), period=0.3, failures=2, delay=2))
    return {"server": server}
