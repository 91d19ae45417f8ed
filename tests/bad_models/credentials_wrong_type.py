# expect: credentials_wrong_type\.py:\d+  web\.credentials: must be a Credentials\(groups=\.\.\., users=\.\.\.\) object
from procmgmt import Process


def processes(settings):
    return {"web": Process(name="web", process="/bin/sleep", credentials={"users": ["web"]})}
