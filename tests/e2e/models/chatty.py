"""Three chatty processes for the day-two tests: ``base``, ``app`` (needs base) and
``solo``; each prints a numbered line to stdout and one to stderr every 0.1 s.
``PROCMGMT_TEST_TAG`` in ``--extra-params`` ({"tag": ...}) changes ``solo`` only."""

from procmgmt import Process

LOOP = ('i=0; while :; do echo "$0 out $i"; echo "$0 err $i" >&2; '
        'i=$((i+1)); sleep 0.1; done')


def processes(settings):
    tag = settings.extra_params.get("tag", "")

    def chatty(name, dependencies=(), env=None):
        return Process(name=name, foreground_process="/bin/sh",
                       foreground_process_args=["-c", LOOP, name],
                       environment=env or {}, dependencies=dependencies)

    base = chatty("base")
    return {
        "base": base,
        "app": chatty("app", dependencies=[base]),
        "solo": chatty("solo", env={"TAG": tag} if tag else {}),
    }
