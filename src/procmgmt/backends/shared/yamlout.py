"""A small YAML writer for the exports (process-compose, Kubernetes).

procmgmt has no YAML library at run time and needs none: the exports write
plain data (mappings, lists, strings, integers, booleans), in block style, so
the files read well and diff well in golden tests. Every string is written in
a form whose meaning does not depend on the reader's guessing rules (YAML 1.1
readers take ``no`` and ``on`` for booleans, ``010`` for octal): plain only
when it is a safe identifier-like word, a literal block (``|``) for readable
multi-line scripts, otherwise double-quoted with every character outside
printable ASCII escaped (``\\n``, ``\\x1b``, ``\\u2028``, ``\\U0001f600``), which
YAML 1.1 and 1.2 readers (go-yaml, PyYAML) decode alike. The tests read every
file back with PyYAML and compare it with the data written.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from typing import Any

#: Words a YAML 1.1 or 1.2 reader would take for something else than a string.
_RESERVED = frozenset({
    "y", "yes", "n", "no", "true", "false", "on", "off", "null", "~",
})
#: Plain scalars written as they are: a letter first, then letters, digits and
#: ``_ - . / :`` (a colon not followed by a space is plain), no ``: `` or `` #``.
_PLAIN = re.compile(r"[A-Za-z_/][A-Za-z0-9_./-]*")
_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\t": "\\t", "\r": "\\r", "\0": "\\0"}


def quoted(text: str) -> str:
    """``text`` as a double-quoted YAML scalar, printable ASCII only."""
    out = []
    for ch in text:
        code = ord(ch)
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif 0x20 <= code < 0x7F:
            out.append(ch)
        elif code <= 0xFF:
            out.append(f"\\x{code:02x}")
        elif code <= 0xFFFF:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    return '"' + "".join(out) + '"'


def _literal_ok(text: str) -> bool:
    """A literal block keeps ``text`` exactly: printable ASCII lines (tabs allowed),
    no leading space (the indentation would be misread) and one final newline."""
    if "\n" not in text.rstrip("\n") or not text.endswith("\n") or text.endswith("\n\n"):
        return False
    if text[0] in " \n":
        return False
    return all(ch in "\n\t" or 0x20 <= ord(ch) < 0x7F for ch in text)


def scalar(value: Any) -> str:
    """One scalar (not a block): a string, an integer or a boolean."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        if _PLAIN.fullmatch(value) and value.lower() not in _RESERVED:
            return value
        return quoted(value)
    raise TypeError(f"cannot write {type(value).__name__} {value!r} as YAML")


@functools.lru_cache(maxsize=4096)
def _key(key: str) -> str:
    """A mapping key (the same few keys recur in every process's entry)."""
    if not isinstance(key, str):
        raise TypeError(f"YAML mapping keys are strings here, got {key!r}")
    return scalar(key)


def _lines(value: Any, indent: int) -> list[str]:
    """The lines of a block collection (a dict, or a list or tuple) at ``indent``
    spaces. Concrete types, not the ABCs: the exports write plain data, and the
    ABC checks took most of the time of a 10,000-process document."""
    pad = " " * indent
    lines: list[str] = []
    if isinstance(value, dict):
        for key, item in value.items():
            lines += _entry(f"{pad}{_key(key)}:", item, indent)
        return lines
    for item in value:
        if isinstance(item, dict) and item:
            inner = _lines(item, indent + 2)
            lines.append(f"{pad}- {inner[0].lstrip()}")
            lines += inner[1:]
        else:
            lines += _entry(f"{pad}-", item, indent)
    return lines


def _entry(head: str, item: Any, indent: int) -> list[str]:
    """``head`` (``key:`` or ``-``) followed by ``item``."""
    if isinstance(item, dict):
        return [f"{head} {{}}"] if not item else [head, *_lines(item, indent + 2)]
    if isinstance(item, (list, tuple)):
        return [f"{head} []"] if not item else [head, *_lines(item, indent + 2)]
    if isinstance(item, str) and _literal_ok(item):
        body = [(" " * (indent + 2) + line) if line else "" for line in item[:-1].split("\n")]
        return [f"{head} |", *body]
    return [f"{head} {scalar(item)}"]


def dump(data: dict[str, Any]) -> str:
    """One YAML document of the mapping ``data``."""
    return "\n".join(_lines(data, 0)) + "\n"


def dump_all(documents: Sequence[dict[str, Any]]) -> str:
    """A stream of documents, each started by ``---``."""
    return "".join(f"---\n{dump(doc)}" for doc in documents)
