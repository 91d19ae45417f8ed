"""supervisord's config format, written so that its own parser reads back what we meant.

Every value is written so that supervisord's own parser gives back exactly the
argv and environment we meant: configparser strips inline comments (``;`` or
``#`` after whitespace), supervisord expands ``%(...)s`` in most values and
replaces the literal text ``%(here)s`` before that, ``command`` is split with
POSIX shlex, and ``environment`` is split with *non*-POSIX shlex, which has no
escapes at all. What the format cannot hold is reported (the ``*_problem``
functions, used by the backend's validation) or raised as ValueError by the
encoders instead of being mangled.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

#: Key order of rendered program sections (anything else follows, sorted).
KEY_ORDER = (
    "command", "priority", "environment", "directory", "umask", "user", "autostart",
    "autorestart", "startsecs", "startretries", "exitcodes", "stopsignal", "stopwaitsecs",
    "stopasgroup", "killasgroup", "stdout_logfile", "redirect_stderr",
)

#: Longest environment= and command= value procmgmt writes. supervisord splits both
#: with shlex, which appends one character at a time to a string: the time grows with
#: the square of the length (measured with supervisor 4.3: 64 KiB 0.24 s, 128 KiB 1 s,
#: 300 KB 4 s, 3 MB minutes), per program, at every reread, with supervisord's socket
#: unanswered meanwhile.
VALUE_MAX = 65536

#: Characters that need no quoting in a shlex word (``%`` is handled separately).
SAFE_WORD = re.compile(r"[A-Za-z0-9_@+=:,./-]+")
#: Environment names that non-POSIX shlex reads as one token.
_ENV_KEY = re.compile(r"[A-Za-z0-9_./+\-():]+")
#: The one expansion supervisord applies textually, before any other.
HERE = "%(here)s"


class Raw(str):
    """A command word containing a deliberate supervisord expansion (``%(here)s``)."""

    __slots__ = ()


def _line_break_problem(text: str) -> str | None:
    if "\0" in text:
        return "contains a NUL character"
    if "\n" in text or "\r" in text:
        return "contains a line break, which a supervisord config value cannot hold"
    return None


def _comment_problem(text: str) -> str | None:
    """configparser cuts a value at ';' or '#' preceded by whitespace."""
    for i, ch in enumerate(text):
        if ch in ";#" and i > 0 and text[i - 1].isspace():
            return (f"contains {text[i - 1:i + 1]!r}: supervisord's config parser reads "
                    "whitespace followed by ';' or '#' as the start of a comment")
    return None


def value_problem(text: str) -> str | None:
    """Why ``text`` cannot be a plain (non-command, non-environment) value, or None."""
    problem = _line_break_problem(text) or _comment_problem(text)
    if problem:
        return problem
    if text != text.strip():
        return "has leading or trailing whitespace, which supervisord strips"
    if HERE in text:
        return f"contains {HERE!r}, which supervisord replaces before anything else"
    return None


def encode_value(text: str, key: str) -> str:
    """A plain value: ``%`` doubled; ValueError if supervisord would change it."""
    problem = value_problem(text)
    if problem:
        raise ValueError(f"supervisord {key}= value {text!r} {problem}")
    return text.replace("%", "%%")


def command_word_problem(word: str) -> str | None:
    """Why ``word`` cannot be one argument of ``command``, or None."""
    return _line_break_problem(word)


def encode_word(word: str) -> str:
    """One argv word for ``command``: POSIX-shlex quoted, '%'-escaped, comment-safe.

    ``;``, ``#``, ``'`` and ``%`` are written outside quotes (``\\;``, ``\\#``,
    ``\\'``, ``%%``), so no whitespace ever precedes ``;``/``#`` (configparser
    comments) and ``%%`` is never followed by ``(here)s`` (supervisord's textual
    ``%(here)s`` replacement). Everything else sits inside single quotes.
    """
    if isinstance(word, Raw):
        return str(word)
    problem = command_word_problem(word)
    if problem:
        raise ValueError(f"supervisord command argument {word!r} {problem}")
    if SAFE_WORD.fullmatch(word):
        return word
    out: list[str] = []
    run: list[str] = []

    def flush() -> None:
        if run:
            out.append("'" + "".join(run) + "'")
            run.clear()

    for ch in word:
        if ch in ";#'":
            flush()
            out.append("\\" + ch)
        elif ch == "%":
            flush()
            out.append("%%")
        else:
            run.append(ch)
    flush()
    return "".join(out) or "''"


def encode_command(argv: Sequence[str]) -> str:
    """A ``command=`` value that supervisord splits back into exactly ``argv``."""
    if not argv:
        raise ValueError("supervisord command is empty")
    return " ".join(encode_word(w) for w in argv)


def env_problem(key: str, value: str) -> str | None:
    """Why ``key=value`` cannot be in ``environment=``, or None.

    supervisord splits ``environment`` with non-POSIX shlex: a value must be one
    quoted token (no escapes exist), and leading/trailing quote characters are
    stripped from every value.
    """
    if not _ENV_KEY.fullmatch(key):
        return f"variable name {key!r} cannot be written in supervisord's environment="
    problem = _line_break_problem(value) or _comment_problem(value)
    if problem:
        return f"value of {key} {problem}"
    if HERE in value:
        return f"value of {key} contains {HERE!r}, which supervisord replaces"
    if value[:1] in ("'", '"') or value[-1:] in ("'", '"'):
        return (f"value of {key} starts or ends with a quote character, which "
                "supervisord's environment parser strips")
    if "'" in value and '"' in value:
        return (f"value of {key} contains both ' and \", which supervisord's "
                "environment parser cannot represent together")
    return None


def encode_environment(env: Mapping[str, str]) -> str:
    """``K="v",K2='v2'`` (sorted) that ``dict_of_key_value_pairs`` reads back exactly."""
    parts = []
    for key in sorted(env):
        value = str(env[key])
        problem = env_problem(key, value)
        if problem:
            raise ValueError(f"supervisord environment: {problem}")
        q = "'" if '"' in value else '"'
        parts.append(f"{key}={q}{value}{q}".replace("%", "%%"))
    return ",".join(parts)


def render_program(name: str, native: Mapping[str, Any]) -> str:
    """The ``[program:<name>]`` section of a native model."""
    keys = [k for k in KEY_ORDER if k in native]
    keys += sorted(k for k in native if k not in KEY_ORDER and not k.startswith("_"))
    lines = [f"[program:{name}]"]
    for key in keys:
        value = native[key]
        if value is None:
            continue
        if not re.fullmatch(r"[a-z_][a-z0-9_]*", key):
            raise ValueError(f"{key!r} is not a supervisord program key")
        if key == "command":
            text = (encode_command([str(w) if not isinstance(w, Raw) else w for w in value])
                    if isinstance(value, list | tuple) else encode_value(str(value), key))
        elif key == "environment" and isinstance(value, Mapping):
            if not value:
                continue
            text = encode_environment(value)
        elif isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, int):
            text = str(value)
        elif isinstance(value, list | tuple):
            text = encode_value(",".join(str(v) for v in value), key)
        else:
            text = encode_value(str(value), key)
        if key in ("command", "environment") and len(text) > VALUE_MAX:
            # Also what an override wrote: supervisord would parse it for minutes.
            raise ValueError(f"{key}= is {len(text)} characters, more than the {VALUE_MAX} "
                             "procmgmt allows (supervisord parses it in time growing with "
                             "the square of its length)")
        lines.append(f"{key}={text}")
    return "\n".join(lines) + "\n"


def program_file(name: str) -> str:
    """Where a process's program section lives, relative to its store entry."""
    return f"conf.d/{name}.conf"


#: The one file procmgmt's own supervisord reads every program from, in its
#: ``conf.d`` (which the config includes as ``conf.d/*.conf``).
PROGRAMS_FILE = "programs.conf"


def programs_text(programs: Iterable[tuple[str, bytes]]) -> bytes:
    """Every program's section in one config text, from ``(name, program file)`` pairs.

    Why one file and not one included file per program: after each included
    file supervisord substitutes ``%(here)s`` in every section read so far
    (``ServerOptions.read_config``), so N files cost time growing with N²,
    at its start and at every ``reloadConfig`` (3.1 s for 1,000 files against
    0.3 s for the same sections in one file). A file of one program's sections
    ends with a newline; each is preceded by a comment naming the process."""
    parts = []
    for name, text in programs:
        parts.append(f"; {name}\n".encode())
        parts.append(text if text.endswith(b"\n") or not text else text + b"\n")
    return b"".join(parts)
