# expect: account_name_with_colon\.py:\d+  web\.credentials\.users\.web:user: invalid user name 'web:user'
# expect: account_name_with_colon\.py:\d+  web\.credentials\.groups\.-web: invalid group name '-web': it starts with '-'
from procmgmt import Credentials, Group, Process, User


def processes(settings):
    return {"web": Process(name="web", process="/bin/sleep", credentials=Credentials(
        groups={"-web": Group()}, users={"web:user": User(group="-web")}))}
