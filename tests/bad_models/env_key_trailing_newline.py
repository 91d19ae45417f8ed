# expect: env_key_trailing_newline\.py:\d+  web\.environment: invalid variable name 'PORT\\n'
from procmgmt import Process


def processes(settings):
    return {"web": Process(name="web", process="/bin/sleep", environment={"PORT\n": "80"})}
