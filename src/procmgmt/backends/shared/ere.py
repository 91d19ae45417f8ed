r"""The regular expressions of ``LogLine`` readiness checks, as POSIX EREs for ``grep -E``.

The engine matches a ``LogLine`` pattern with Python's :mod:`re`; the
generated scripts (init scripts, proxies, systemd's ready script) match it
with ``grep -E``. Both must accept the same lines, so the scripts accept only
a small, documented subset of Python's syntax that means the same in both,
read by the parser below (no private :mod:`re` internals), and validation
refuses everything else with the offset of the first construct outside it:

* characters stand for themselves, except ``\ . [ ] ( ) { * + ? | ^ $``;
  a backslash before any ASCII punctuation or a space makes it literal
  (``\.``, ``\$``, ``\{``), ``\t`` is a tab;
* ``.`` (any character), ``^`` and ``$`` (start and end of the line);
* ``\d``, ``\w``, ``\s`` and their negations ``\D``, ``\W``, ``\S``, taken
  as ASCII classes (``[0-9]``, ``[[:alnum:]_]``, ``[[:space:]]``);
* bracket expressions ``[...]`` and ``[^...]`` of characters, ranges
  (``a-z``) and ``\d``, ``\w``, ``\s``; ``]``, ``[``, ``\`` and ``^`` are
  written escaped inside them (``\]``); ``-`` first, last or escaped;
  ``\D``, ``\W``, ``\S`` only as the sole member of a non-negated class;
* groups ``(...)`` and ``(?:...)``; alternatives ``a|b`` (none empty);
* quantifiers ``*``, ``+``, ``?``, ``{m}``, ``{m,}``, ``{,n}``, ``{m,n}``
  (counts up to 255, POSIX's ``RE_DUP_MAX``), each optionally lazy (``*?``:
  whether *some* match exists does not depend on greediness);
* a leading ``(?i)``, which becomes ``grep -i``.

Outside the subset, among others: ``\b``, ``\B``, ``\A``, ``\Z``,
backreferences, lookarounds, named groups, possessive quantifiers, inline
flags other than a leading ``(?i)``, ``\n``/``\r`` (a log line holds no line
break), numeric escapes (``\x41``), and the empty pattern (it matches before
anything is written).
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass

#: POSIX RE_DUP_MAX: the largest bound of ``{m,n}`` every ERE implementation takes.
RE_DUP_MAX = 255

#: Characters with a meaning in an ERE outside brackets (escaped when literal).
_ERE_SPECIAL = frozenset(".[\\()*+?{|^$")
_LINE_BREAKS = "\n\r\0"
_CLASSES = {"d": "0-9", "w": "[:alnum:]_", "s": "[:space:]"}


class UntranslatableError(ValueError):
    """A pattern outside the subset; ``offset`` is where in the pattern."""

    def __init__(self, message: str, offset: int | None = None, pattern: str = "") -> None:
        where = ""
        if offset is not None:
            where = f"at offset {offset} ({pattern[offset:offset + 10]!r}): "
        super().__init__(where + message)
        self.offset = offset


def ere(pattern: str) -> tuple[str, bool]:
    """``(ERE, ignore_case)`` that ``grep -E`` matches on the same lines as
    ``re.search(pattern, line)``; :class:`UntranslatableError` outside the subset."""
    try:
        with warnings.catch_warnings():
            # "Possible nested set" and the like: the subset refuses those anyway.
            warnings.simplefilter("ignore", FutureWarning)
            re.compile(pattern)
    except re.error as exc:
        raise UntranslatableError(f"invalid regular expression: {exc.msg}", exc.pos,
                                  pattern) from None
    return _Parser(pattern).parse()


@dataclass
class _Parser:
    pattern: str
    pos: int = 0

    def fail(self, message: str, at: int | None = None) -> UntranslatableError:
        return UntranslatableError(message, self.pos if at is None else at, self.pattern)

    def peek(self, ahead: int = 0) -> str:
        i = self.pos + ahead
        return self.pattern[i] if i < len(self.pattern) else ""

    def parse(self) -> tuple[str, bool]:
        ignore_case = self.pattern.startswith("(?i)")
        if ignore_case:
            self.pos = 4
        if self.pos == len(self.pattern):
            raise UntranslatableError("an empty pattern matches before any line is written; "
                                      "give a pattern that a line must contain")
        text = self.alternatives()
        if self.pos != len(self.pattern):  # an unbalanced ')': re.compile refused it
            raise self.fail("unbalanced parenthesis")
        return text, ignore_case

    def alternatives(self) -> str:
        starts = [self.pos]
        parts = [self.sequence()]
        while self.peek() == "|":
            self.pos += 1
            starts.append(self.pos)
            parts.append(self.sequence())
        if len(parts) > 1 and not all(parts):
            raise self.fail("an empty alternative has no portable ERE equivalent",
                            starts[parts.index("")])
        return "|".join(parts)

    def sequence(self) -> str:
        out: list[str] = []
        while self.peek() not in ("", "|", ")"):
            start = self.pos
            atom, repeatable = self.atom()
            if self.peek() in ("*", "+", "?", "{"):
                if not repeatable:
                    raise self.fail("a quantifier needs something to repeat")
                atom += self.quantifier()
                if self.peek() in ("*", "+", "?", "{"):
                    raise self.fail("possessive quantifiers and a quantifier on a quantifier "
                                    "have no ERE equivalent")
            elif not atom:
                raise self.fail("an empty group has no portable ERE equivalent", start)
            out.append(atom)
        return "".join(out)

    def atom(self) -> tuple[str, bool]:
        """The next atom as ERE text, and whether a quantifier may follow it."""
        ch = self.peek()
        if ch == "(":
            return self.group(), True
        if ch == "[":
            return self.bracket(), True
        self.pos += 1
        if ch == ".":
            return ".", True
        if ch in "^$":
            return ch, False
        if ch == "\\":
            return self.escape(), True
        if ch == "{":
            raise self.fail("a '{' that starts no repetition count: write \\{", self.pos - 1)
        return _literal_text(ch, self, self.pos - 1), True

    def group(self) -> str:
        start = self.pos
        self.pos += 1
        if self.peek() == "?":
            if self.peek(1) == ":":
                self.pos += 2
            elif self.peek(1) in ("=", "!") or self.pattern.startswith(("<=", "<!"),
                                                                        self.pos + 1):
                raise self.fail("lookahead and lookbehind have no POSIX ERE equivalent", start)
            elif self.peek(1) == "P":
                raise self.fail("named groups and references are outside the supported "
                                "subset: use (...) or (?:...)", start)
            else:
                raise self.fail("(?...) other than (?:...) and a leading (?i) is outside the "
                                "supported subset (inline flags, atomic groups, comments, "
                                "conditionals)", start)
        body = self.alternatives()
        self.pos += 1  # the ')' (re.compile saw the parentheses balanced)
        if not body:
            raise self.fail("an empty group has no portable ERE equivalent", start)
        return f"({body})"

    def quantifier(self) -> str:
        ch = self.peek()
        self.pos += 1
        if ch in "*+?":
            text = ch
        else:
            m = re.compile(r"(\d*)(,?)(\d*)\}").match(self.pattern, self.pos)
            if not m or not (m.group(1) or m.group(3)):
                raise self.fail("a '{' that starts no repetition count: write \\{", self.pos - 1)
            low, comma, high = m.groups()
            if int(low or 0) > RE_DUP_MAX or int(high or 0) > RE_DUP_MAX:
                raise self.fail(f"repetition counts above {RE_DUP_MAX} are not portable in ERE",
                                self.pos - 1)
            self.pos = m.end()
            text = "{" + (low or "0") + comma + high + "}"
        if self.peek() == "?":
            self.pos += 1  # lazy: matching the same lines as greedy
        return text

    def escape(self) -> str:
        start = self.pos - 1
        ch = self.peek()
        self.pos += 1
        if ch.lower() in _CLASSES:
            return _bracket([], [_CLASSES[ch.lower()]], negate=ch.isupper())
        return _literal_text(_escaped_char(ch, self, start), self, start)

    def bracket(self) -> str:
        start = self.pos
        self.pos += 1
        negate = self.peek() == "^"
        if negate:
            self.pos += 1
        chars: list[str] = []
        classes: list[str] = []
        negated_class: list[str] = []
        first = True
        while True:
            item_at = self.pos
            ch = self.peek()
            if ch == "]" and not first:
                break
            if ch == "]":
                raise self.fail("write \\] for a ']' inside a bracket expression", item_at)
            if ch in ("[", ""):
                raise self.fail("write \\[ for a '[' inside a bracket expression", item_at)
            self.pos += 1
            if ch == "\\":
                esc = self.peek()
                self.pos += 1
                if esc.lower() in _CLASSES:
                    (negated_class if esc.isupper() else classes).append(_CLASSES[esc.lower()])
                    first = False
                    continue
                ch = _escaped_char(esc, self, item_at)
            if self.peek() == "-" and self.peek(1) not in ("]", ""):
                self.pos += 1
                hi_at = self.pos
                hi = self.peek()
                self.pos += 1
                if hi == "\\":
                    hi = _escaped_char(self.peek(), self, hi_at)
                    self.pos += 1
                if ch in "]-^[" + _LINE_BREAKS or hi in "]-^[" + _LINE_BREAKS:
                    raise self.fail(f"the range {ch!r}-{hi!r} cannot be written portably in "
                                    "a POSIX bracket expression", item_at)
                classes.append(f"{ch}-{hi}")
            else:
                chars.append(ch)
            first = False
        self.pos += 1  # the ']'
        if negated_class:
            if negate or chars or classes or len(negated_class) > 1:
                raise self.fail("\\D, \\W and \\S are supported inside brackets only as the "
                                "sole member of a non-negated class", start)
            return _bracket([], negated_class, negate=True)
        return _bracket(chars, classes, negate, self, start)


def _escaped_char(ch: str, parser: _Parser, at: int) -> str:
    """The character ``\\ch`` stands for, inside or outside brackets."""
    if ch == "t":
        return "\t"
    if ch in "nr":
        raise parser.fail("a line break cannot occur within a log line", at)
    if ch in "bB":
        raise parser.fail(f"\\{ch} (a word boundary) has no POSIX ERE equivalent", at)
    if ch in "AZz":
        raise parser.fail(f"\\{ch} (start or end of the text) has no POSIX ERE equivalent; "
                          "use ^ or $", at)
    if ch.isdigit():
        raise parser.fail("backreferences and numeric escapes have no POSIX ERE "
                          "equivalent", at)
    if ch.isascii() and ch.isprintable() and not ch.isalnum():
        return ch
    raise parser.fail(f"the escape \\{ch} is outside the supported subset", at)


def _literal_text(ch: str, parser: _Parser, at: int) -> str:
    if ch in _LINE_BREAKS:
        raise parser.fail("a line break or NUL cannot occur within a log line", at)
    return "\\" + ch if ch in _ERE_SPECIAL else ch


def _bracket(chars: list[str], classes: list[str], negate: bool,
             parser: _Parser | None = None, at: int = 0) -> str:
    """A POSIX bracket expression: ``]`` first, ``[`` and ``^`` late, ``-`` last;
    backslash is an ordinary character inside brackets."""
    members: set[str] = set()
    for ch in chars:
        if ch in _LINE_BREAKS:
            if negate:
                continue  # a line never contains it: excluding it changes nothing
            assert parser is not None
            raise parser.fail("a line break or NUL cannot occur within a log line", at)
        members.add(ch)
    first = ["]"] if "]" in members else []
    last = [c for c in "[^-" if c in members]
    middle = sorted(members - {"]", "[", "^", "-"})
    body = "".join(first + middle + classes + last)
    if body.startswith("^") and not negate:
        if body == "^":
            return "\\^"
        body = body[1:] + "^"  # a leading ^ would negate
    if not body:
        return "."  # [^\n]: only excluded line breaks, so anything
    return ("[^" if negate else "[") + body + "]"
