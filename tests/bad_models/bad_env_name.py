# expect: bad_env_name\.py:\d+  web\.environment: invalid variable name '1PORT'
from procmgmt import Process


def processes(settings):
    return {"web": Process(name="web", process="/bin/sleep", environment={"1PORT": "80"})}
