"""Models the image tests build, written into a test's tmp_path (small closures:
no Python, so an image builds in about a second)."""

from __future__ import annotations

from pathlib import Path

SLEEPERS = '''
from procmgmt import Credentials, Group, Instance, Process, User


def processes(settings):
    def sleeper(name, deps=()):
        return Process(name=name, instance_name=name, foreground_process="/bin/sleep",
                       foreground_process_args=["600"], daemon=None, user=name,
                       dependencies=list(deps),
                       environment={"DATA": "/etc/hostname"},
                       credentials=Credentials(groups={name: Group()},
                                               users={name: User(group=name)}))
    first = sleeper("first")
    second = sleeper("second", [first])
    return {"first": Instance(first), "second": Instance(second)}
'''

MISSING = '''
from procmgmt import Instance, Process


def processes(settings):
    return {"ghost": Instance(Process(name="ghost", foreground_process="/nonexistent/ghostd",
                                      daemon=None))}
'''


def write(tmp_path: Path, name: str, text: str) -> Path:
    """Write model ``text`` as ``tmp_path/name.py``; its path."""
    path = tmp_path / f"{name}.py"
    path.write_text(text)
    return path
