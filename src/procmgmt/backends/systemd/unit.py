"""The systemd unit-file encoder: quoting for ``Exec*=`` and ``Environment=``
words, checks for values a unit file line cannot carry, and the unit text.

Each function undoes exactly what systemd's parser does to the line (specifiers,
word splitting with C escapes, ``$`` expansion), so what reaches the process is
what the model wrote.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

#: Section order in the unit file; other sections follow in model order.
SECTION_ORDER = ("Unit", "Service", "Install")

_KEY = re.compile(r"[A-Za-z][A-Za-z0-9_-]*")
_SECTION = re.compile(r"[A-Za-z][A-Za-z0-9 _.-]*")
#: Words written without quotes. Everything else is double-quoted.
_SAFE_WORD = re.compile(r"[A-Za-z0-9_@+=:,./-]+")
_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\t": "\\t", "\r": "\\r",
            "\a": "\\a", "\b": "\\b", "\f": "\\f", "\v": "\\v"}


def c_escape(text: str) -> str:
    """C escapes systemd undoes (EXTRACT_CUNESCAPE) inside a double-quoted word."""
    out = []
    for ch in text:
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\x{ord(ch):02x}")
        else:
            out.append(ch)  # non-ASCII stays literal UTF-8
    return "".join(out)


def _check_text(text: str, what: str) -> None:
    if "\0" in text:
        raise ValueError(f"{what}: a NUL character cannot be passed to a process")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(f"{what}: {text!r} is not valid Unicode text") from None


def exec_word(word: str) -> str:
    """One argument of an ``Exec*=`` line that systemd hands over exactly as ``word``.

    systemd resolves specifiers on the raw line (``%%`` -> ``%``), then
    splits it into words (quotes, C escapes) and finally expands ``$VAR``
    in each word (``$$`` -> ``$``): the escapes are applied in the reverse
    order. A lone ``;`` would separate commands, so it is quoted too.
    """
    _check_text(word, "command argument")
    text = word.replace("$", "$$")
    if not (_SAFE_WORD.fullmatch(text) and text != ";"):
        text = '"' + c_escape(text) + '"'
    return text.replace("%", "%%")


def exec_line(argv: Sequence[str], prefix: str = "") -> str:
    """An ``Exec*=`` value running ``argv``; ``prefix`` is systemd's ``-@:+!`` flags."""
    if not argv:
        raise ValueError("a command needs at least the executable")
    return prefix + " ".join(exec_word(a) for a in argv)


def environment_assignment(name: str, value: str) -> str:
    """One ``Environment=`` word: ``NAME=value``, double-quoted when needed.

    No ``$`` expansion happens in Environment=, but specifiers do (``%%``),
    and quotes and C escapes are undone.
    """
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise ValueError(f"Environment: {name!r} is not a valid variable name")
    _check_text(value, f"Environment {name}")
    text = f"{name}={value}"
    if not _SAFE_WORD.fullmatch(text):
        text = '"' + c_escape(text) + '"'
    return text.replace("%", "%%")


def specifier_escape(text: str) -> str:
    """Plain text for a setting that resolves specifiers (Description, paths)."""
    return text.replace("%", "%%")


def environment_problem(value: str) -> str | None:
    """Why ``value`` cannot be an Environment= value, or None.

    systemd 252 accepts C-escaped control characters in values, but
    versions before 248 reject every control character except TAB and drop
    the whole assignment with only a log warning. A unit must not lose a
    variable silently on an older systemd, so such values are refused here.
    """
    for ch in value:
        if ch == "\0":
            return "contains a NUL character, which no environment variable can hold"
        if (ord(ch) < 0x20 and ch != "\t") or ord(ch) == 0x7F:
            name = "a newline" if ch == "\n" else f"the control character {ch!r}"
            return (f"contains {name}; systemd's Environment= cannot hold it portably "
                    "(systemd before 248 drops the variable)")
    return None


def path_problem(path: str) -> str | None:
    """Why ``path`` cannot be a WorkingDirectory=/PIDFile= value, or None.

    Those settings are plain one-line values (no quoting): a line break or
    other control character would end or corrupt the line, surrounding
    whitespace is stripped, a trailing backslash continues the line, and
    systemd refuses paths that are not normalized ("." or ".." components).
    """
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in path):
        return ("contains a line break or another control character, which a unit "
                "file line cannot hold")
    if path != path.strip():
        return "has leading or trailing whitespace, which systemd strips"
    if path.endswith("\\"):
        return "ends with a backslash, which would continue the unit file line"
    if any(part in (".", "..") for part in path.split("/")):
        return "contains a '.' or '..' component; systemd accepts only normalized paths"
    return None


def _render_value(section: str, key: str, value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, Mapping):
        if key != "Environment":
            raise ValueError(f"[{section}] {key}: only Environment may be a dict")
        return [environment_assignment(str(k), str(v))
                for k, v in sorted(value.items()) if v is not None]
    if isinstance(value, list | tuple):
        return [line for item in value for line in _render_value(section, key, item)]
    if isinstance(value, bool):
        return ["yes" if value else "no"]
    text = str(value)
    if "\n" in text or "\r" in text or "\0" in text:
        raise ValueError(f"[{section}] {key}: a value must be one line, got {text!r}")
    if text.rstrip().endswith("\\"):
        raise ValueError(f"[{section}] {key}: a trailing backslash would continue the line")
    return [text.strip()]


def render_unit(native: Mapping[str, Any]) -> str:
    """The unit file text of a native model."""
    sections = [s for s in SECTION_ORDER if s in native]
    sections += [s for s in native if s not in SECTION_ORDER]
    lines = ["# Generated by procmgmt (systemd backend)."]
    for section in sections:
        body = native[section]
        if body is None:
            continue
        if not isinstance(body, Mapping):
            raise ValueError(f"section {section!r} must be a dict of keys, got {body!r}")
        if not _SECTION.fullmatch(section):
            raise ValueError(f"{section!r} is not a unit file section name")
        out = []
        for key, value in body.items():
            if not _KEY.fullmatch(str(key)):
                raise ValueError(f"[{section}] {key!r} is not a unit file key")
            out += [f"{key}={v}" for v in _render_value(section, str(key), value)]
        if out:
            lines += ["", f"[{section}]", *out]
    return "\n".join(lines) + "\n"
