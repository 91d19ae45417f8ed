"""The LogLine pattern subset: ``grep -E`` on the translation accepts exactly the
lines Python's ``re.search`` accepts, and everything outside the subset is refused
with its offset (procmgmt.backends.shared.ere)."""

from __future__ import annotations

import os
import re
import subprocess

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from procmgmt import readiness as rd
from procmgmt.backends.shared import ready
from procmgmt.backends.shared.ere import UntranslatableError, ere

#: The characters test lines are made of: letters of both cases, digits, blanks
#: and the characters the subset gives a meaning (ASCII: the classes are ASCII).
ALPHABET = "abAB09 \t.-^$]}[\\_@:"


def grep_matches(pattern: str, lines: list[str]) -> None:
    """One ``grep -E`` over all ``lines``: it selects exactly those re.search accepts."""
    text, icase = ere(pattern)
    found = subprocess.run(
        ["grep", "-n", "-E", *(["-i"] if icase else []), "-e", text],
        input="".join(f"{line}\n" for line in lines), capture_output=True, text=True,
        check=False, env={**os.environ, "LC_ALL": "C"})
    assert found.returncode in (0, 1), found.stderr
    by_grep = {int(row.split(":", 1)[0]) - 1 for row in found.stdout.splitlines()}
    by_re = {i for i, line in enumerate(lines) if re.search(pattern, line)}
    assert by_grep == by_re, (pattern, text, [(lines[i], i in by_re) for i in by_grep ^ by_re])


# --- patterns of the subset, generated ---------------------------------------------

_LITERAL = st.sampled_from([*"abAB01 _@:}]", r"\.", r"\-", r"\^", r"\$", r"\]", r"\[",
                            r"\\", r"\{", r"\}", r"\(", r"\)", r"\*", r"\+", r"\?", r"\|",
                            r"\t"])
_CLASS = st.sampled_from([r"\d", r"\w", r"\s", r"\D", r"\W", r"\S"])
_MEMBER = st.sampled_from(["a", "b", "B", "0", " ", "_", "@", r"\]", r"\[", r"\\", r"\^",
                           r"\-", "a-c", "0-1", "A-Z", r"\d", r"\w", r"\s", ".", "$", "}"])


@st.composite
def _bracket(draw: st.DrawFn) -> str:
    members = draw(st.lists(_MEMBER, min_size=1, max_size=4))
    negate = draw(st.booleans())
    return "[" + ("^" if negate else "") + "".join(members) + "]"


_QUANTIFIER = st.sampled_from(["*", "+", "?", "*?", "+?", "??", "{2}", "{0,1}", "{1,}",
                               "{,2}", "{1,2}?"])


def _pattern(depth: int) -> st.SearchStrategy[str]:
    atom: st.SearchStrategy[str] = _LITERAL | _CLASS | st.just(".") | _bracket()
    if depth:
        inner = _pattern(depth - 1)
        atom = atom | inner.map(lambda p: f"({p})") | inner.map(lambda p: f"(?:{p})")

    @st.composite
    def piece(draw: st.DrawFn) -> str:
        text = draw(atom)
        return text + draw(_QUANTIFIER) if draw(st.booleans()) else text

    sequence = st.lists(piece(), min_size=1, max_size=4).map("".join)
    return st.lists(sequence, min_size=1, max_size=3).map("|".join)


@st.composite
def _full_pattern(draw: st.DrawFn) -> str:
    body = draw(_pattern(2))
    if draw(st.booleans()):
        body = "^" + body
    if draw(st.booleans()):
        body += "$"
    return ("(?i)" if draw(st.booleans()) else "") + body


_LINES = st.lists(st.text(ALPHABET, max_size=8), min_size=1, max_size=25)


@pytest.mark.e2e
@settings(max_examples=300, deadline=None)
@given(pattern=_full_pattern(), lines=_LINES)
def test_grep_selects_the_lines_python_selects(pattern: str, lines: list[str]) -> None:
    """Every pattern of the subset is accepted, and grep -E on its translation
    selects the same lines as Python's re.search."""
    grep_matches(pattern, lines)


@pytest.mark.e2e
@pytest.mark.parametrize("pattern, lines", [
    (r"^ready on port \d+$", ["ready on port 5432", "ready on port x", "not ready on port 1"]),
    (r"(?i)listening", ["LISTENING now", "listen ing"]),
    (r"a.*?b", ["axxb", "ba"]),
    (r"[\]\-^a]x", ["]x", "-x", "^x", "ax", "bx"]),
    (r"[\^-]", ["^", "-", "a"]),
    (r"[^\d]z", ["1z", "az"]),
    (r"\w+@\S+", ["me@host", "@host", "me@ "]),
    (r"\.\$\{\(", [".${(", "a${("]),
    (r"(?:ab|cd){2}e", ["abcde", "abe"]),
    (r"x{2,3}y", ["xy", "xxy", "xxxxy"]),
    (r"x{,2}y$", ["y", "xxy", "z"]),
    (r"[\[]:", ["[:", ":"]),
    (r"[\D]", ["1", "a"]),
    (r"\\d", ["\\d", "1"]),
])
def test_examples(pattern: str, lines: list[str]) -> None:
    """Hand-picked corners: bracket member order, escapes, lazy and bounded counts."""
    grep_matches(pattern, lines)


# --- refusals, located -------------------------------------------------------------

@pytest.mark.parametrize("pattern, offset, words", [
    (r"\bx", 0, r"\b"),
    (r"ab\B", 2, r"\B"),
    (r"(?<=a)b", 0, "lookbehind"),
    (r"a(?=b)", 1, "lookahead"),
    (r"(a)\1", 3, "backreferences"),
    (r"a++", 2, "possessive"),
    (r"(?i:a)b", 0, "subset"),
    (r"a(?i)b", 1, "invalid regular expression: global flags"),
    (r"(?x)a b", 0, "subset"),
    (r"(?P<n>a)", 0, "named groups"),
    (r"(a|)", 3, "empty alternative"),
    (r"|a", 0, "empty alternative"),
    (r"x()", 1, "empty group"),
    (r"\Aa", 0, r"\A"),
    (r"a\Z", 1, r"\Z"),
    (r"x{1,300}", 1, "above 255"),
    (r"a{x", 1, r"\{"),
    ("a\nb", 1, "line break"),
    (r"a\nb", 1, "line break"),
    (r"\x41", 0, r"\x"),
    (r"[]a]", 1, r"\]"),
    (r"[[:alpha:]]", 1, r"\["),
    (r"[^\D]", 0, r"\D"),
    (r"[a-\^]", 1, "range"),
])
def test_outside_the_subset_is_refused_where_it_is(pattern: str, offset: int,
                                                     words: str) -> None:
    with pytest.raises(UntranslatableError) as caught:
        ere(pattern)
    assert caught.value.offset == offset
    assert str(caught.value).startswith(f"at offset {offset} (")
    assert words in str(caught.value)


@pytest.mark.parametrize("pattern", ["", "(?i)", "listening on ([0-9]+"])
def test_empty_and_invalid_patterns_are_refused(pattern: str) -> None:
    with pytest.raises(UntranslatableError, match=r"empty pattern|invalid regular expression"):
        ere(pattern)


def test_validation_names_the_field_the_offset_and_the_subset() -> None:
    """A LogLine pattern outside the subset is a readiness.pattern problem that says
    where and points to the documented subset."""
    (found,) = ready.problems(rd.LogLine(path="/x", pattern=r"ready\b"))
    assert found[0] == "readiness.pattern"
    assert r"at offset 5 ('\\b')" in found[1]
    assert "docs/backends.md" in found[1]
