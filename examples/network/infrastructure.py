"""Three hosts reached over SSH, each with its own address (edit to match yours).

Each target names how to log in, the process manager procmgmt uses there,
procmgmt's state dir and venv on that host, and the ``address`` other
hosts' services reach it at.
"""

from __future__ import annotations

from procmgmt.network import SSH, Target


def infrastructure() -> list[Target]:
    return [
        Target("test1", SSH("test1.example.org", user="deploy", key="~/.ssh/id_ed25519"),
               process_manager="sysvinit", state_dir="/home/deploy/.local/state/procmgmt",
               properties={"address": "192.0.2.10"}),
        Target("test2", SSH("test2.example.org", user="deploy", key="~/.ssh/id_ed25519"),
               process_manager="supervisord", state_dir="/home/deploy/.local/state/procmgmt",
               properties={"address": "192.0.2.11"}),
        Target("test3", SSH("test3.example.org", user="deploy", key="~/.ssh/id_ed25519"),
               process_manager="sysvinit", state_dir="/home/deploy/.local/state/procmgmt",
               properties={"address": "192.0.2.12"}),
    ]
