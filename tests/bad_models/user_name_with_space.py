# expect: user_name_with_space\.py:\d+  web\.user: invalid user name 'web user': use letters, digits, '\.', '_' and '-' only
from procmgmt import Process


def processes(settings):
    return {"web": Process(name="web", process="/bin/sleep", user="web user")}
