"""Three chatty processes for the day-two tests: ``base``, ``app`` (needs base) and
``solo``; each prints a numbered line to stdout and one to stderr every 0.1 s.
``--extra-params``: ``{"tag": ...}`` changes ``solo`` only; ``{"user": NAME}`` runs
``solo`` as its own account NAME (created by the switch) when user changes are allowed,
with ``{"id": N}`` as its declared uid and gid.
A process exits at once while ``STATE_DIR/fail-NAME`` exists. ``solo`` declares
``reload_signal="USR1"`` and prints ``reloaded`` when it gets it.
"""

from procmgmt import Credentials, Group, Process, User

#: Exits at once (a failing start) while the file $FAIL_FILE exists.
LOOP = ('[ -e "$FAIL_FILE" ] && { echo "$0: told to fail" >&2; exit 1; }; '
        'trap \'echo "$0 reloaded"\' USR1; '
        'i=0; while :; do echo "$0 out $i"; echo "$0 err $i" >&2; '
        'i=$((i+1)); sleep 0.1; done')


def processes(settings):
    tag = settings.extra_params.get("tag", "")
    user = settings.extra_params.get("user") if settings.privileged else None

    def chatty(name, dependencies=(), env=None, **kwargs):
        return Process(name=name, foreground_process="/bin/sh",
                       foreground_process_args=["-c", LOOP, name],
                       environment={"FAIL_FILE": f"{settings.state_dir}/fail-{name}",
                                    **(env or {})},
                       dependencies=dependencies, **kwargs)

    base = chatty("base")
    own = {} if not user else {
        "user": user,
        "credentials": Credentials(
            groups={user: Group(gid=settings.extra_params.get("id"))},
            users={user: User(group=user, uid=settings.extra_params.get("id"),
                              description="day-two test")}),
    }
    return {
        "base": base,
        "app": chatty("app", dependencies=[base]),
        "solo": chatty("solo", env={"TAG": tag} if tag else {}, reload_signal="USR1",
                       **own),
    }
