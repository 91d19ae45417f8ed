# expect: environment_too_large\.py:\d+  web\.environment: arguments and environment together are \d+ bytes; execve allows at most \d+ \(ARG_MAX\)
from procmgmt import Process


def processes(settings):
    env = {f"V{i}": "z" * 100_000 for i in range(100)}
    return {"web": Process(name="web", process="/bin/sleep", environment=env)}
