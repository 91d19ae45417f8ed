"""Injection-proof generation: awkward values reach the process exactly, or are refused.

Shared pieces of the two suites: the Hypothesis strategies that produce
awkward text (quotes, ``$``, backticks, backslashes, ``%``, newlines, tabs,
``;``, ``#``, glob characters, non-ASCII), a :class:`Case` describing one
process made of such values, and :func:`model_of` turning cases into an
in-memory model exactly as ``processes(settings)`` would return it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from hypothesis import strategies as st

from procmgmt.errors import ValidationError
from procmgmt.model.loader import Model
from procmgmt.model.process import Instance, Process

HERE = Path(__file__).resolve().parent
RECORDER = HERE / "recorder.py"

#: Fragments that mean something to some layer: a shell, systemd's unquoting,
#: specifier or ``$`` expansion, configparser comments, supervisord's ``%``
#: interpolation and its literal ``%(here)s``, globbing, line structure.
TOKENS = (
    " ", "  ", "'", '"', "$", "$HOME", "${X}", "$(id)", "`id`", "\\", "\\n", "\\'", "%",
    "%%", "%n", "%(here)s", "%(ENV_HOME)s", "\n", "\t", "\r", ";", " ;", "#", " #", "*",
    "?", "[a]", "~", "!", "&", "|", "<", ">", "(", ")", "{", "}", "=", ",", ":", "-",
    "--x", "é", "grüße", "☃", "\u00a0", "\u2028", "日本", "a", "b", "0",
)

#: Awkward text: a few tokens or arbitrary characters (never NUL, never a lone surrogate).
AWKWARD = st.lists(
    st.sampled_from(TOKENS) | st.characters(exclude_categories=["Cs"], exclude_characters="\0"),
    max_size=6,
).map("".join)

#: One path component: awkward, but not empty, '.', '..', or containing '/'.
#: At most 40 bytes so that paths stay far below PATH_MAX and unix socket limits.
COMPONENT = AWKWARD.map(lambda s: s.replace("/", "_")).filter(
    lambda s: s not in ("", ".", "..") and len(s.encode()) <= 40)

#: Variable names: never a name a generated script uses for itself (those are
#: refused by validation, see the fixed cases), so that values are what vary.
ENV_NAME = st.from_regex(r"[A-Z][A-Z0-9_]{0,6}", fullmatch=True).filter(
    lambda k: k not in ("PATH", "IFS", "HOME", "PWD", "OLDPWD", "SHLVL", "ENV", "CDPATH",
                        "PS4", "OPTIND", "LANG", "LC_ALL", "LC_CTYPE", "PYTHONPATH"))

#: Valid process names (validate.NAME_RE) with every punctuation mark it allows.
NAME = st.from_regex(r"[a-z][a-z0-9_.@-]{0,12}", fullmatch=True)

#: Names every backend must refuse at validation.
INVALID_NAMES = ("my web", "a/b", "..", ".", "-web", "", "web\n", "tab\tname", "semi;colon",
                 "quote'name", 'dq"name', "$name", "`x`", "star*", "é", "a" * 101,
                 "back\\slash", "/abs", ".hidden")


@dataclass
class Case:
    """One process built from awkward values.

    ``mode`` "foreground" gives only a foreground command; "daemon" only a
    daemon command with an explicit ``pid_file`` (the process must write it).
    ``directory``/``pid_file`` are absolute paths.
    """

    name: str
    args: list[str]
    environment: dict[str, str] = field(default_factory=dict)
    mode: str = "foreground"
    directory: str | None = None
    pid_file: str | None = None
    exe: str = "/bin/true"

    def process(self) -> Process:
        """The Process, written the way a model author would."""
        if self.mode == "daemon":
            return Process(name=self.name, daemon=self.exe, foreground_process=None,
                           args=list(self.args), environment=dict(self.environment),
                           directory=self.directory, pid_file=self.pid_file)
        return Process(name=self.name, foreground_process=self.exe, daemon=None,
                       args=list(self.args), environment=dict(self.environment),
                       directory=self.directory, pid_file=self.pid_file)


def model_of(cases: Sequence[Case], file: str | os.PathLike[str]) -> Model:
    """An evaluated model holding one instance per case (keyed by its name)."""
    return Model(file=os.path.abspath(file),
                 instances={c.name: Instance(c.process()) for c in cases})


#: Which model fields each awkward value of a Case lands in: a validation
#: problem must name one of these for the refusal to count as "clear".
AWKWARD_FIELDS = ("args", "foreground_process_args", "daemon_args", "environment",
                  "directory", "pid_file", "name", "log_file", "process", "daemon",
                  "foreground_process", "path")


def refusal_is_clear(exc: ValidationError, backend: str) -> None:
    """Every problem names an instance and one of the fields that held an awkward
    value, and none is the catch-all "rendering failed" (which would mean a
    value slipped through validation and broke the renderer)."""
    for p in exc.problems:
        assert p.instance, f"problem without an instance: {p}"
        assert p.field, f"problem without a field: {p}"
        head = re.split(r"[.\[]", p.field, maxsplit=1)[0]
        assert head in AWKWARD_FIELDS, f"{backend}: unexpected field in {p}"
        assert "rendering failed" not in p.message, f"{backend}: not caught by validation: {p}"
        assert p.file and p.line, f"{backend}: no file:line in {p}"
