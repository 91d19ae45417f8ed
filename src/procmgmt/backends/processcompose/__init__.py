"""``-P process-compose``: the generation as one ``process-compose.yaml``.

process-compose (github.com/F1bonacc1/process-compose) runs a project's
processes in the foreground of a terminal, with dependencies, probes and
restart policies. This export writes the model in its vocabulary, from the
same translation pipeline as every backend (overrides patch each process's
entry); procmgmt does not run process-compose (``deploys`` is False): the
user runs ``process-compose -f OUT/process-compose.yaml up``. See
docs/backends.md (process-compose) for what maps to what.
"""

from procmgmt.backends.processcompose.backend import ProcessComposeBackend

BACKEND = ProcessComposeBackend
