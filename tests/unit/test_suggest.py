"""did-you-mean: the closest candidate, or nothing when none is close."""

from __future__ import annotations

import pytest

from procmgmt.model.contain import unknown_keyword
from procmgmt.suggest import closest, did_you_mean


def test_closest() -> None:
    """difflib's closest match above its 0.6 cut-off."""
    assert closest("foreground_proces", ["process", "foreground_process", "daemon"]) \
        == "foreground_process"
    assert closest("xyzzy", ["status", "switch"]) is None
    assert did_you_mean("stauts", ["status", "switch"]) == "; did you mean 'status'?"
    assert did_you_mean("xyzzy", ["status"]) == ""


def test_unknown_keyword_only_for_model_classes() -> None:
    """A TypeError about a keyword of Process (or User, TCP...) gets the parameter meant;
    other TypeErrors (the user's own functions) are left as they are."""
    from procmgmt import Process, User

    with pytest.raises(TypeError) as info:
        Process(name="x", foreground_proces="/bin/true")  # type: ignore[call-arg]
    assert unknown_keyword(info.value) == ("Process() has no parameter 'foreground_proces'; "
                                           "did you mean 'foreground_process'?")
    with pytest.raises(TypeError) as info:
        User(hom_dir="/x")  # type: ignore[call-arg]
    assert unknown_keyword(info.value) == \
        "User() has no parameter 'hom_dir'; did you mean 'home_dir'?"

    def mine(port: int) -> int:
        return port

    with pytest.raises(TypeError) as info:
        mine(prt=1)  # type: ignore[call-arg]
    assert unknown_keyword(info.value) is None
    assert unknown_keyword(TypeError("unsupported operand")) is None
