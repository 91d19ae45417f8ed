"""The ID assigner library: algorithm (§4.2), file validation, lookups, credentials."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import stat
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from procmgmt.errors import (
    IdRequirementError,
    IdResourcesError,
    IdsDepletedError,
    IdsFileError,
    IdsMissingError,
    UserError,
)
from procmgmt.ids import (
    IdAssignments,
    PlaceholderIds,
    Resource,
    assign,
    assign_for_model,
    check_assigned,
    credentials_with_ids,
    gid_for,
    load_ids,
    load_resources,
    lookup,
    missing_assignments,
    parse_ids,
    parse_resources,
    read_ids,
    uid_for,
    with_ids,
    write_atomic,
)
from procmgmt.model.credentials import Credentials, Group, User
from tests.conftest import EXAMPLES, golden_settings

#: The assigner's search loops are bounded only by its depletion check: fail fast if not.
pytestmark = pytest.mark.timeout(60)

PORTS = Resource("ports", 5000, 5009)


def ports_of(requirements: dict[str, list[str]],
             previous: IdAssignments | None = None,
             resources: dict[str, Resource] | None = None) -> dict[str, int]:
    """Assign with the ``ports`` pool and return its instance -> port map."""
    result = assign(requirements, resources or {"ports": PORTS}, previous)
    return result.assignments.ids["ports"]


# --- the algorithm -----------------------------------------------------------------

def test_first_assignment_starts_at_min_in_sorted_instance_order() -> None:
    """Without previous ids, instances get min, min+1, ... in sorted name order."""
    ports = ports_of({"c": ["ports"], "a": ["ports"], "b": ["ports"]})
    assert ports == {"a": 5000, "b": 5001, "c": 5002}


def test_only_instances_that_require_the_resource_get_an_id() -> None:
    """An instance without the resource in requires_unique_ids_for gets nothing from it."""
    result = assign({"a": ["ports"], "b": [], "c": ["uids"]},
                    {"ports": PORTS, "uids": Resource("uids", 2000, 2010)})
    assert result.assignments.ids == {"ports": {"a": 5000}, "uids": {"c": 2000}}


def test_existing_valid_assignments_are_retained() -> None:
    """Valid previous ids stay exactly as they were, even out of the usual order."""
    previous = IdAssignments({"ports": {"a": 5007, "b": 5003}}, {"ports": 5007})
    result = assign({"a": ["ports"], "b": ["ports"]}, {"ports": PORTS}, previous)
    assert result.assignments.ids["ports"] == {"a": 5007, "b": 5003}
    assert result.assigned == ()
    assert result.dropped == ()


def test_adding_an_instance_changes_only_that_instance() -> None:
    """A new instance gets the next id after the last assignment; the others keep theirs."""
    first = assign({"a": ["ports"], "b": ["ports"]}, {"ports": PORTS}).assignments
    second = assign({"a": ["ports"], "b": ["ports"], "aa": ["ports"]}, {"ports": PORTS}, first)
    assert second.assignments.ids["ports"] == {"a": 5000, "b": 5001, "aa": 5002}
    assert [(a.instance, a.id) for a in second.assigned] == [("aa", 5002)]
    assert second.assignments.last_assignments == {"ports": 5002}


def test_round_robin_does_not_reuse_a_freed_id_immediately() -> None:
    """After removing b (5001), a new instance gets 5003, not the freed 5001."""
    first = assign({"a": ["ports"], "b": ["ports"], "c": ["ports"]}, {"ports": PORTS})
    second = assign({"a": ["ports"], "c": ["ports"], "d": ["ports"]}, {"ports": PORTS},
                    first.assignments)
    assert second.assignments.ids["ports"] == {"a": 5000, "c": 5002, "d": 5003}


def test_round_robin_wraps_to_min_and_skips_used_ids() -> None:
    """Past max the search restarts at min and skips ids that are still in use."""
    pool = Resource("ports", 5000, 5003)
    previous = IdAssignments({"ports": {"a": 5000, "z": 5003}}, {"ports": 5003})
    ports = ports_of({"a": ["ports"], "z": ["ports"], "m": ["ports"], "n": ["ports"]},
                     previous, {"ports": pool})
    assert ports == {"a": 5000, "z": 5003, "m": 5001, "n": 5002}


def test_freed_id_is_reused_after_a_full_cycle() -> None:
    """Round-robin, not never-reuse: once the pool wrapped, a freed id comes back."""
    pool = Resource("ports", 5000, 5002)
    previous = IdAssignments({"ports": {"b": 5001, "c": 5002}}, {"ports": 5002})
    assert ports_of({"b": ["ports"], "c": ["ports"], "d": ["ports"]}, previous,
                    {"ports": pool}) == {"b": 5001, "c": 5002, "d": 5000}


@pytest.mark.parametrize(("requirements", "resources", "stored", "reason"), [
    ({"a": ["ports"]}, {"ports": PORTS}, {"gone": 5000}, "no longer in the model"),
    ({"a": []}, {"ports": PORTS}, {"a": 5000}, "no longer requires 'ports'"),
    ({"a": ["ports"]}, {"ports": PORTS}, {"a": 4999}, "outside the range 5000-5009"),
    ({"a": ["ports"]}, {"ports": PORTS}, {"a": 5010}, "outside the range 5000-5009"),
    ({"a": ["ports"]}, {"ports": Resource("ports", 5000, 5100, step=10)}, {"a": 5015},
     "not on a step of 10 from 5000"),
], ids=["instance-gone", "not-required", "below-min", "above-max", "off-step"])
def test_stale_assignments_are_dropped(requirements: dict[str, list[str]],
                                       resources: dict[str, Resource],
                                       stored: dict[str, int], reason: str) -> None:
    """Each cause of staleness drops the id and says why."""
    previous = IdAssignments({"ports": stored})
    result = assign(requirements, resources, previous)
    assert len(result.dropped) == 1
    dropped = result.dropped[0]
    assert (dropped.resource, dropped.id) == ("ports", next(iter(stored.values())))
    assert reason in dropped.reason
    for instance, old in stored.items():
        if instance in requirements and "ports" in requirements[instance]:
            # Re-assigned a fresh, valid id.
            new = result.assignments.ids["ports"][instance]
            assert resources["ports"].problem_with(new) is None
            assert new != old
        else:
            assert instance not in result.assignments.ids["ports"]


def test_assignments_of_a_removed_resource_are_dropped() -> None:
    """A resource gone from the resources file loses its ids and its last assignment."""
    previous = IdAssignments({"old": {"a": 7}, "ports": {"a": 5000}},
                             {"old": 7, "ports": 5000})
    result = assign({"a": ["ports"]}, {"ports": PORTS}, previous)
    assert result.assignments.ids == {"ports": {"a": 5000}}
    assert result.assignments.last_assignments == {"ports": 5000}
    assert [(d.resource, d.reason) for d in result.dropped] == [
        ("old", "the resource is no longer defined")]


def test_duplicate_ids_keep_the_first_instance() -> None:
    """Two instances holding one id (hand edit): the first in sorted order keeps it."""
    previous = IdAssignments({"ports": {"a": 5004, "b": 5004}}, {"ports": 5004})
    result = assign({"a": ["ports"], "b": ["ports"]}, {"ports": PORTS}, previous)
    assert result.assignments.ids["ports"] == {"a": 5004, "b": 5005}
    assert "also assigned to 'a'" in result.dropped[0].reason


def test_invalid_last_assignment_restarts_at_min() -> None:
    """A last assignment that is not a slot any more (range moved) is forgotten."""
    previous = IdAssignments({}, {"ports": 9999})
    assert ports_of({"a": ["ports"]}, previous) == {"a": 5000}


def test_depletion_names_the_resource_and_its_range() -> None:
    """More instances than slots is an error naming resource, range and instance."""
    pool = Resource("ports", 5000, 5001, source="res.json")
    with pytest.raises(IdsDepletedError) as err:
        assign({"a": ["ports"], "b": ["ports"], "c": ["ports"]}, {"ports": pool})
    text = str(err.value)
    assert "'ports'" in text
    assert "5000-5001" in text
    assert "'c'" in text
    assert "res.json" in text
    assert isinstance(err.value, UserError)


def test_step_gives_ids_on_the_grid() -> None:
    """With step 10 the ids are min, min+10, ... and the pool holds (max-min)//step+1."""
    pool = Resource("ports", 5000, 5025, step=10)
    assert pool.slots == 3
    assert ports_of({"a": ["ports"], "b": ["ports"], "c": ["ports"]},
                    resources={"ports": pool}) == {"a": 5000, "b": 5010, "c": 5020}
    with pytest.raises(IdsDepletedError, match="5000-5025 step 10"):
        assign({n: ["ports"] for n in "abcd"}, {"ports": pool})


@pytest.mark.parametrize("scope", ["global", "machine"])
def test_scope_is_accepted_and_behaves_like_one_pool(scope: str) -> None:
    """Both scopes parse, are kept, and assign the same ids on a single machine."""
    resources = parse_resources({"ports": {"min": 5000, "max": 5009, "scope": scope}}, "r.json")
    assert resources["ports"].scope == scope
    assert ports_of({"a": ["ports"], "b": ["ports"]}, resources=resources) == {
        "a": 5000, "b": 5001}


def test_unknown_resource_is_an_error() -> None:
    """Requiring a resource the resources file does not define names both."""
    with pytest.raises(IdRequirementError, match=r"'a'.*'nope'.*defined: ports"):
        assign({"a": ["nope"]}, {"ports": PORTS})


def test_string_instead_of_list_is_explained() -> None:
    """requires_unique_ids_for="ports" (iterated into characters) gets a precise hint."""
    with pytest.raises(IdRequirementError, match=r"must be a list.*\['ports'\]"):
        assign({"a": tuple("ports")}, {"ports": PORTS})


def test_output_is_deterministic_and_diffable() -> None:
    """Same inputs in a different order give byte-identical, sorted, indented JSON."""
    resources = {"ports": PORTS, "uids": Resource("uids", 2000, 2100)}
    one = assign({"b": ["uids", "ports"], "a": ["ports"]}, resources).assignments.to_json()
    two = assign({"a": ["ports"], "b": ["ports", "uids"]},
                 dict(reversed(resources.items()))).assignments.to_json()
    assert one == two
    assert one.endswith("}\n")
    assert one == json.dumps(json.loads(one), indent=2, sort_keys=True) + "\n"


def test_assigning_twice_changes_nothing() -> None:
    """Idempotence: feeding the output back assigns and drops nothing."""
    resources = {"ports": PORTS, "uids": Resource("uids", 2000, 2100)}
    req = {"a": ["ports", "uids"], "b": ["ports"], "c": ["uids"]}
    first = assign(req, resources)
    second = assign(req, resources, first.assignments)
    assert second.assignments == first.assignments
    assert (second.assigned, second.dropped) == ((), ())


@settings(max_examples=150, deadline=None)
@given(
    lo=st.integers(1, 50), span=st.integers(0, 30), step=st.integers(1, 4),
    wanted=st.sets(st.sampled_from("abcdefghij")),
    stored=st.dictionaries(st.sampled_from("abcdefghijk"), st.integers(0, 100)),
    last=st.one_of(st.none(), st.integers(0, 100)),
)
def test_property_unique_valid_retained_idempotent(
        lo: int, span: int, step: int, wanted: set[str], stored: dict[str, int],
        last: int | None) -> None:
    """For any pool and previous file: ids are unique slots, valid ones kept, reruns stable."""
    pool = Resource("r", lo, lo + span, step)
    previous = IdAssignments({"r": stored}, {} if last is None else {"r": last})
    req = {name: ["r"] for name in wanted}
    try:
        result = assign(req, {"r": pool}, previous)
    except IdsDepletedError:
        assert len(wanted) > pool.slots
        return
    got = result.assignments.ids["r"]
    assert set(got) == wanted
    assert len(set(got.values())) == len(got)
    assert all(pool.problem_with(v) is None for v in got.values())
    kept = {n: v for n, v in sorted(stored.items())
            if n in wanted and pool.problem_with(v) is None}
    first_holder: dict[int, str] = {}
    for n, v in kept.items():
        first_holder.setdefault(v, n)
    for n, v in kept.items():
        if first_holder[v] == n:
            assert got[n] == v
    again = assign(req, {"r": pool}, result.assignments)
    assert again.assignments == result.assignments


# --- resources file validation -----------------------------------------------------

@pytest.mark.parametrize(("spec", "message"), [
    ({"max": 10}, "resource 'ports': missing 'min'"),
    ({"min": 10}, "resource 'ports': missing 'max'"),
    ({"min": 20, "max": 10}, "resource 'ports': 'min' (20) is greater than 'max' (10)"),
    ({"min": 1, "max": 10, "step": 0}, "resource 'ports': 'step' must be at least 1"),
    ({"min": 1, "max": 10, "stepp": 2}, "resource 'ports': unknown key 'stepp'"),
    ({"min": "1", "max": 10}, "resource 'ports': 'min' must be an integer, got '1'"),
    ({"min": 1, "max": True}, "resource 'ports': 'max' must be an integer, got True"),
    ({"min": 1, "max": 10, "step": 1.5}, "resource 'ports': 'step' must be an integer"),
    ({"min": 1, "max": 10, "scope": "world"}, "'scope' must be one of 'global', 'machine'"),
    ({"min": 0, "max": 10}, "'min' must be at least 1"),
    ([1, 10], "resource 'ports': expected an object with min and max, got list"),
], ids=["no-min", "no-max", "min-gt-max", "step-0", "unknown-key", "str-min", "bool-max",
        "float-step", "bad-scope", "min-0", "not-object"])
def test_resources_validation_messages(spec: object, message: str) -> None:
    """Each mistake in a resource is reported with the file and the resource name."""
    with pytest.raises(IdResourcesError) as err:
        parse_resources({"ports": spec}, "res.json")
    assert str(err.value).startswith("res.json: ")
    assert message in str(err.value)


def test_resources_problems_are_reported_together() -> None:
    """Two broken resources give two lines in one error."""
    with pytest.raises(IdResourcesError) as err:
        parse_resources({"a": {"min": 1}, "b": {"max": 1}}, "res.json")
    lines = str(err.value).splitlines()
    assert lines == ["res.json: resource 'a': missing 'max'",
                     "res.json: resource 'b': missing 'min'"]


def test_resources_top_level_must_be_an_object() -> None:
    """A JSON list as the resources file is rejected naming the file."""
    with pytest.raises(IdResourcesError, match=r"^res\.json: expected a JSON object"):
        parse_resources([], "res.json")


def test_load_resources_file_errors(tmp_path: Path) -> None:
    """Missing, malformed and empty resources files are UserErrors naming the path."""
    missing = tmp_path / "missing.json"
    with pytest.raises(IdResourcesError, match=re.escape(f"{missing}: no such")):
        load_resources(str(missing))
    bad = tmp_path / "bad.json"
    bad.write_text('{"ports": {"min": 1,}}')
    with pytest.raises(IdResourcesError, match=re.escape(str(bad)) + r":1:\d+: .*not valid JSON"):
        load_resources(str(bad))
    empty = tmp_path / "empty.json"
    empty.write_text("")
    with pytest.raises(IdResourcesError,
                       match=re.escape(f"{empty}: the ID resources file is empty")):
        load_resources(str(empty))
    with pytest.raises(IdResourcesError, match="is a directory"):
        load_resources(str(tmp_path))


def test_example_resources_file_is_valid() -> None:
    """The shipped example parses into the three pools the example model uses."""
    resources = load_resources(str(EXAMPLES / "webapps" / "idresources.json"))
    assert sorted(resources) == ["gids", "uids", "webapp_ports"]
    assert resources["webapp_ports"].describe() == "5000-6000"


# --- ids file validation -----------------------------------------------------------

@pytest.mark.parametrize(("data", "message"), [
    ([], "expected a JSON object"),
    ({"ids": {}, "extra": 1}, "unknown key 'extra'"),
    ({"ids": []}, "'ids' must be an object"),
    ({"ids": {"ports": [5000]}}, "ids.ports: expected an object of instance -> ID"),
    ({"ids": {"ports": {"a": "5000"}}}, "ids.ports.a: expected an integer, got '5000'"),
    ({"ids": {"ports": {"a": False}}}, "ids.ports.a: expected an integer, got False"),
    ({"last_assignments": 5}, "'last_assignments' must be an object"),
    ({"last_assignments": {"ports": None}}, "last_assignments.ports: expected an integer"),
], ids=["list", "unknown-key", "ids-list", "resource-list", "str-id", "bool-id",
        "last-int", "last-null"])
def test_ids_validation_messages(data: object, message: str) -> None:
    """Each mistake in an ids file is reported with the file and the path inside it."""
    with pytest.raises(IdsFileError) as err:
        parse_ids(data, "ids.json")
    assert str(err.value).startswith("ids.json: ")
    assert message in str(err.value)


def test_ids_file_round_trip(tmp_path: Path) -> None:
    """What to_json writes, read_ids and load_ids read back unchanged."""
    doc = IdAssignments({"ports": {"a": 5000, "b": 5001}, "uids": {}}, {"ports": 5001})
    path = tmp_path / "ids.json"
    path.write_text(doc.to_json())
    assert read_ids(str(path)) == doc
    assert load_ids(str(path)) == doc.ids


def test_ids_file_without_last_assignments_is_accepted() -> None:
    """A minimal hand-written file with only ids is valid."""
    assert parse_ids({"ids": {"p": {"a": 1}}}, "x") == IdAssignments({"p": {"a": 1}}, {})


def test_empty_ids_file_explains_the_redirection_trap(tmp_path: Path) -> None:
    """An empty ids file (``--ids f > f``) is an error, not 'no ids': ids would be lost."""
    path = tmp_path / "ids.json"
    path.write_text("\n")
    with pytest.raises(IdsFileError, match=r"is empty.*--output-file"):
        read_ids(str(path))


def test_unreadable_ids_file(tmp_path: Path) -> None:
    """A file without read permission is a UserError naming it (skipped as root)."""
    if os.geteuid() == 0:
        pytest.skip("root reads any file")
    path = tmp_path / "ids.json"
    path.write_text("{}")
    path.chmod(0)
    with pytest.raises(IdsFileError, match=re.escape(f"{path}: cannot read the ids file")):
        read_ids(str(path))


# --- lookups, placeholders, build checks -------------------------------------------

def test_lookup_reads_missing_ids_as_default() -> None:
    """lookup returns the id, or 0 (or the given default) when it is not assigned yet."""
    s = dataclasses.replace(golden_settings(), ids={"ports": {"a": 5000}})
    assert lookup(s, "ports", "a") == 5000
    assert lookup(s, "ports", "b") == 0
    assert lookup(s, "uids", "a", default=-1) == -1
    assert lookup({"ports": {"a": 7}}, "ports", "a") == 7


def test_placeholder_ids_index_missing_entries_as_zero() -> None:
    """settings.ids[r][i] evaluates to 0 before assignment; membership shows real ids."""
    ids = PlaceholderIds({"ports": {"a": 5000}})
    assert ids["ports"]["a"] == 5000
    assert ids["ports"]["b"] == 0
    assert ids["uids"]["a"] == 0
    assert "uids" not in ids
    assert "b" not in ids["ports"]
    assert dict(ids["ports"]) == {"a": 5000}
    assert ids.get("uids") is None
    assert list(ids) == ["ports"]


def test_with_ids_loads_the_file_into_settings(tmp_path: Path) -> None:
    """with_ids puts the file's assignments into settings.ids; None leaves settings alone."""
    path = tmp_path / "ids.json"
    path.write_text(IdAssignments({"ports": {"a": 5000}}, {"ports": 5000}).to_json())
    base = golden_settings()
    assert with_ids(base, None) is base
    assert with_ids(base, str(path)).ids == {"ports": {"a": 5000}}


def test_missing_assignments_are_reported_for_a_build() -> None:
    """A build with an outdated ids file names each missing (instance, resource)."""
    from procmgmt.model.process import Instance, Process

    instances = {"a": Instance(Process(process="x"), requires_unique_ids_for=["ports"]),
                 "b": Instance(Process(process="x"), requires_unique_ids_for=["ports", "uids"])}
    ids = {"ports": {"a": 5000}}
    assert missing_assignments(instances, ids) == [("b", "ports"), ("b", "uids")]
    with pytest.raises(IdsMissingError, match=r"'b' requires an ID from 'uids', but ids.json"):
        check_assigned(instances, ids, "ids.json")
    check_assigned(instances, {"ports": {"a": 1, "b": 2}, "uids": {"b": 3}}, "ids.json")


def test_assign_for_model_evaluates_before_the_first_assignment() -> None:
    """The example model evaluates with no ids and gets ports, uids and gids."""
    result = assign_for_model(str(EXAMPLES / "webapps" / "processes-ids.py"),
                              str(EXAMPLES / "webapps" / "idresources.json"), None,
                              golden_settings())
    assert result.assignments.ids == {
        "webapp_ports": {"webapp1": 5000, "webapp2": 5001},
        "uids": {"webapp1": 2000, "webapp2": 2001},
        "gids": {"webapp1": 2000, "webapp2": 2001},
    }


# --- credentials -------------------------------------------------------------------

def test_uid_and_gid_come_from_same_named_instances() -> None:
    """uid_for/gid_for read the uids/gids pools by name; other names get None."""
    ids = {"uids": {"webapp1": 2000}, "gids": {"webapp1": 2100}}
    assert uid_for("webapp1", ids) == 2000
    assert gid_for("webapp1", ids) == 2100
    assert uid_for("other", ids) is None
    assert gid_for("webapp1", {}) is None


def test_credentials_get_assigned_ids_unless_explicit() -> None:
    """Assigned uids/gids fill in missing ones; explicit User(uid)/Group(gid) win."""
    creds = Credentials(
        groups={"webapp1": Group(), "fixed": Group(gid=42), "other": Group()},
        users={"webapp1": User(group="webapp1"), "fixed": User(uid=43)},
    )
    ids = {"uids": {"webapp1": 2000, "fixed": 2001}, "gids": {"webapp1": 2100, "fixed": 2101}}
    out = credentials_with_ids(creds, ids)
    assert out.groups == {"webapp1": Group(gid=2100), "fixed": Group(gid=42), "other": Group()}
    assert out.users == {"webapp1": User(uid=2000, group="webapp1"), "fixed": User(uid=43)}


# --- writing -----------------------------------------------------------------------

def test_write_atomic_replaces_and_keeps_mode(tmp_path: Path) -> None:
    """The file is replaced whole, keeps its permissions and leaves no temporary file."""
    path = tmp_path / "ids.json"
    path.write_text("old")
    path.chmod(0o640)
    write_atomic(str(path), "new\n")
    assert path.read_text() == "new\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert sorted(os.listdir(tmp_path)) == ["ids.json"]


def test_write_atomic_into_missing_directory_is_a_user_error(tmp_path: Path) -> None:
    """A bad output path is a UserError naming it, not a traceback."""
    target = tmp_path / "nope" / "ids.json"
    with pytest.raises(IdsFileError, match=re.escape(f"{target}: cannot write")):
        write_atomic(str(target), "x")
