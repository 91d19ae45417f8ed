# expect: liveness_bad_values\.py:\d+  web\.liveness\.period: must be a finite, positive number of seconds, got -1
# expect: liveness_bad_values\.py:\d+  web\.liveness\.failures: must be a positive integer \(failed probes in a row\), got 0
# expect: liveness_bad_values\.py:\d+  web\.liveness\.check\.port: must be a port number 1-65535, got 70000
# expect: liveness_bad_values\.py:\d+  web\.liveness: needs restart='on-failure' or restart='always'
# expect: liveness_bad_values\.py:\d+  tail\.liveness\.check: cannot be a 'log' check
# expect: liveness_bad_values\.py:\d+  bare\.liveness: must be Liveness\(check=\.\.\., period=\.\.\.\), not a bare readiness check
# expect: liveness_bad_values\.py:\d+  daemon\.liveness: needs a foreground process
from procmgmt import Process
from procmgmt.readiness import TCP, Liveness, LogLine


def processes(settings):
    web = Process(name="web", foreground_process="/bin/sleep", foreground_process_args=["9"],
                  liveness=Liveness(TCP(port=70000), period=-1, failures=0))
    tail = Process(name="tail", foreground_process="/bin/sleep", foreground_process_args=["9"],
                   restart="always", liveness=Liveness(LogLine(path="/tmp/x", pattern="up")))
    bare = Process(name="bare", foreground_process="/bin/sleep", foreground_process_args=["9"],
                   restart="always", liveness=TCP(port=80))
    daemon = Process(name="daemon", daemon="/usr/sbin/food", foreground_process=None,
                     restart="on-failure", liveness=Liveness(TCP(port=81)))
    return {"web": web, "tail": tail, "bare": bare, "daemon": daemon}
