# expect: account_id_out_of_range\.py:\d+  web\.credentials\.groups\.web\.gid: must be an integer between 0 and 4294967294, got 1099511627776
# expect: account_id_out_of_range\.py:\d+  web\.credentials\.users\.web\.uid: must be an integer between 0 and 4294967294, got -1
# expect: account_id_out_of_range\.py:\d+  web\.credentials\.users\.averyveryveryveryverylongusername1: invalid user name '\w+': it has 34 characters, at most 32
from procmgmt import Credentials, Group, Process, User


def processes(settings):
    return {"web": Process(name="web", process="/bin/sleep", credentials=Credentials(
        groups={"web": Group(gid=2**40)},
        users={"web": User(uid=-1, group="web"),
               "averyveryveryveryverylongusername1": User()}))}
