# expect: conflicting_user\.py:\d+  b\.credentials\.users\.web: user 'web' is also declared by instance 'a' with different uid
# expect: conflicting_user\.py:\d+  b\.credentials\.groups\.web: group 'web' is also declared by instance 'a' with different gid
from procmgmt import Credentials, Group, Instance, Process, User


def processes(settings):
    return {
        "a": Instance(Process(name="a", process="/bin/sleep", credentials=Credentials(
            groups={"web": Group(gid=2001)}, users={"web": User(uid=2001, group="web")}))),
        "b": Instance(Process(name="b", process="/bin/sleep", credentials=Credentials(
            groups={"web": Group(gid=2002)}, users={"web": User(uid=2002, group="web")}))),
    }
