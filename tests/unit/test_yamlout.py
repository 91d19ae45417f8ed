"""The exports' YAML writer: whatever it writes, PyYAML reads back as the same data."""

from __future__ import annotations

from typing import Any

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from procmgmt.backends.shared import yamlout

SCALARS = (st.text(max_size=30) | st.sampled_from(["no", "on", "Yes", "null", "~", "010",
                                                    "1e3", "- x", "a: b", "#c", "  lead",
                                                    "tab\tin", "x\n", "a\nb\n", "a\nb",
                                                    "a\n\n", " \n", "\u2028", "\ufeff",
                                                    "{{x}}", "$$"])
           | st.integers(min_value=-(2**40), max_value=2**40) | st.booleans())
DATA = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4)
                    | st.dictionaries(st.text(max_size=10), inner, max_size=4), max_leaves=20)


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(st.text(max_size=10), DATA, max_size=5))
def test_pyyaml_reads_back_what_was_written(data: dict[str, Any]) -> None:
    assert yaml.safe_load(yamlout.dump(data)) == (data or None) or (
        not data and yamlout.dump(data) == "\n")


def test_scripts_are_literal_blocks() -> None:
    text = yamlout.dump({"script": "#!/bin/sh\necho \"$x\" 'y'\n"})
    assert text == "script: |\n  #!/bin/sh\n  echo \"$x\" 'y'\n"


def test_words_a_reader_would_misread_are_quoted() -> None:
    assert yamlout.dump({"a": "no", "b": "010", "c": "plain/word-1.x"}) == (
        'a: "no"\nb: "010"\nc: plain/word-1.x\n')


def test_a_stream_of_documents() -> None:
    docs = [{"kind": "A"}, {"kind": "B", "x": []}]
    assert list(yaml.safe_load_all(yamlout.dump_all(docs))) == docs
