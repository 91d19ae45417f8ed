"""``procmgmt image`` end to end without running the image: the manifest and config
against golden files, reproducibility, the closure it reports, located errors."""

from __future__ import annotations

import gzip
import io
import json
import re
import sys
import tarfile
from pathlib import Path
from typing import Any

import pytest
import supervisor

from procmgmt.cli.main import main
from procmgmt.image import oci
from procmgmt.image.build import Image, ImageOptions, build_image
from procmgmt.settings import resolve
from tests.image.models import MISSING, SLEEPERS, write

GOLDEN = Path(__file__).parent / "golden"
FIXTURES = Path(__file__).parent.parent / "fixtures"
#: Store entries are named by a hash of what the backend renders: the golden files
#: check the layout, not the scripts (the backends' own golden files do that).
_STORE_HASH = re.compile(r"/store/[a-z0-9]{32}-")


def _build(tmp_path: Path, manager: str, run_as: tuple[int, int] | None = None) -> Image:
    model = write(tmp_path, "sleepers", SLEEPERS)
    return build_image(str(model), resolve({}, {}),
                       ImageOptions(manager=manager, run_as=run_as, name="procmgmt/test",
                                    tag=manager))


def _masked(image: Image) -> dict[str, Any]:
    """index.json, the manifest and the config, with what depends on this host's
    binaries (layer digests and sizes, the interpreter's path) replaced by names."""
    index = json.loads(image.files["index.json"])
    digest = index["manifests"][0]["digest"].split(":", 1)[1]
    manifest = json.loads(image.files[f"blobs/sha256/{digest}"])
    config = dict(image.config)
    text = json.dumps({"index": index, "manifest": manifest, "config": config,
                       "generation layer": _generation_layer(image)}, indent=2, sort_keys=True)
    text = _STORE_HASH.sub("/store/<hash>-", text)
    text = text.replace(sys.executable, "<python>")
    supervisor_parent = str(Path(supervisor.__file__).parent.parent)
    text = text.replace(supervisor_parent, "<supervisor package parent>")
    doc: dict[str, Any] = json.loads(text)
    doc["generation layer"].sort()  # masked store names no longer sort as the tar does
    doc["index"]["manifests"][0]["digest"] = "<manifest digest>"
    doc["index"]["manifests"][0]["size"] = "<manifest size>"
    doc["manifest"]["config"]["digest"] = "<config digest>"
    doc["manifest"]["config"]["size"] = "<config size>"
    for n, desc in enumerate(doc["manifest"]["layers"], 1):
        desc["digest"], desc["size"] = f"<layer {n} digest>", f"<layer {n} size>"
    doc["config"]["rootfs"]["diff_ids"] = [
        f"<layer {n} diff_id>" for n in range(1, len(doc["config"]["rootfs"]["diff_ids"]) + 1)]
    return doc


def _generation_layer(image: Image) -> list[str]:
    """The second layer (generation, accounts, state dirs: nothing from the host), one
    ``MODE UID:GID PATH`` line per entry."""
    digest = json.loads(image.files["index.json"])["manifests"][0]["digest"].split(":")[1]
    manifest = json.loads(image.files[f"blobs/sha256/{digest}"])
    blob = image.files["blobs/sha256/" + manifest["layers"][1]["digest"].split(":")[1]]
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(blob))) as tar:
        return [f"{m.mode:04o} {m.uid}:{m.gid} /{m.name}"
                + (f" -> {m.linkname}" if m.issym() else "") for m in tar.getmembers()]


@pytest.mark.parametrize(("manager", "run_as"), [
    ("sysvinit", None), ("sysvinit", (4242, 4242)),
    pytest.param("s6", None, marks=pytest.mark.requires_tool("s6-svscan")),
    pytest.param("s6", (4242, 4243), marks=pytest.mark.requires_tool("s6-svscan")),
    ("supervisord", None),
])
def test_manifest_and_config_golden(tmp_path: Path, update_golden: bool, manager: str,
                                    run_as: tuple[int, int] | None) -> None:
    image = _build(tmp_path, manager, run_as)
    flavour = "privileged" if run_as is None else "unprivileged"
    golden = GOLDEN / f"{manager}-{flavour}.json"
    got = json.dumps(_masked(image), indent=2, sort_keys=True) + "\n"
    if update_golden:
        golden.write_text(got)
    assert got == golden.read_text(), f"rewrite with --update-golden and review: {golden}"


@pytest.mark.requires_tool("s6-svscan")
def test_same_input_same_bytes(tmp_path: Path) -> None:
    """Built twice, the layout files are byte for byte the same, and so is the tar."""
    one, two = _build(tmp_path, "s6"), _build(tmp_path, "s6")
    assert one.digest == two.digest
    assert one.files == two.files
    oci.write_tar(str(tmp_path / "one.tar"), one.files)
    oci.write_tar(str(tmp_path / "two.tar"), two.files)
    assert (tmp_path / "one.tar").read_bytes() == (tmp_path / "two.tar").read_bytes()


def test_image_layers_hold_the_generation_and_the_closure(tmp_path: Path) -> None:
    image = _build(tmp_path, "sysvinit")
    files = image.closure.files
    assert any(p.endswith("/sleep") and "first: foreground_process" in why
               for p, why in files.items())
    assert files.get("/etc/hostname") == "first: named in environment DATA"
    assert any("shared library of" in why for why in files.values())
    assert [p.name for p in image.generation.processes] == ["first", "second"]
    entry = image.start.entrypoint
    assert entry[:2] == ("/bin/sh", "/etc/procmgmt/init.sh")
    assert [a.rsplit("/", 1)[-1] for a in entry[2:]] == ["first", "second"]


@pytest.mark.requires_tool("s6-svscan")
def test_cli_writes_the_tar_and_lists_the_closure(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    model = write(tmp_path, "sleepers", SLEEPERS)
    out = tmp_path / "image.tar"
    assert main(["image", "-P", "s6", str(model), "-o", str(out), "--list-closure",
                 "--name", "sleepers:v1"]) == 0
    captured = capsys.readouterr()
    assert re.search(r"^/etc/hostname  \(first: named in environment DATA\)$",
                     captured.out, re.M)
    assert re.search(r"^/usr/bin/s6-svscan  \(the process manager\)$", captured.out, re.M)
    assert "sleepers:v1 (s6, privileged, 2 processes" in captured.err
    with tarfile.open(out) as tar:
        names = tar.getnames()
        index = json.loads(tar.extractfile("index.json").read())  # type: ignore[union-attr]
        archive = json.loads(tar.extractfile("manifest.json").read())  # type: ignore[union-attr]
    assert {"oci-layout", "index.json", "manifest.json", "blobs", "blobs/sha256"} <= set(names)
    assert index["manifests"][0]["annotations"][oci.REF_NAME] == "v1"
    # docker load's index names the same blobs the OCI manifest does
    digest = index["manifests"][0]["digest"].split(":")[1]
    with tarfile.open(out) as tar:
        manifest = json.loads(tar.extractfile(f"blobs/sha256/{digest}").read())  # type: ignore[union-attr]
    assert archive == [{"Config": "blobs/sha256/" + manifest["config"]["digest"][7:],
                        "RepoTags": ["sleepers:v1"],
                        "Layers": ["blobs/sha256/" + d["digest"][7:]
                                   for d in manifest["layers"]]}]


def test_missing_executable_is_located(tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    model = write(tmp_path, "missing", MISSING)
    assert main(["image", "-P", "sysvinit", str(model), "-o", str(tmp_path / "x.tar")]) != 0
    err = capsys.readouterr().err
    assert "ghost" in err and "/nonexistent/ghostd" in err
    assert "Traceback" not in err
    assert not (tmp_path / "x.tar").exists()


def test_output_must_be_a_file_in_an_existing_directory(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = write(tmp_path, "sleepers", SLEEPERS)
    assert main(["image", str(model), "-o", str(tmp_path)]) == 2
    assert f"--output: {tmp_path} is a directory" in capsys.readouterr().err
    assert main(["image", str(model), "-o", str(tmp_path / "no" / "x.tar")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_a_manager_that_cannot_be_pid_1_is_refused(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    model = write(tmp_path, "sleepers", SLEEPERS)
    assert main(["image", "-P", "systemd", str(model), "-o", str(tmp_path / "x.tar")]) != 0
    err = capsys.readouterr().err
    assert "not systemd (choose one with -P)" in err


@pytest.mark.requires_tool("s6-svscan")
def test_directories_are_image_paths(tmp_path: Path) -> None:
    """--state-dir and friends name paths in the image; PROCMGMT_*_DIR variables (the
    host's deployment) are ignored."""
    model = write(tmp_path, "sleepers", SLEEPERS)
    image = build_image(str(model), resolve({}, {}), ImageOptions(
        manager="s6", dirs={"state_dir": "/srv/state", "log_dir": "/logs"}))
    scan = image.start.entrypoint[-1]
    assert scan == "/srv/state/lib/procmgmt/s6/processes/scan"
    layout = json.dumps(image.config)
    assert "/logs" not in layout  # the config says how to start, the layer holds the dirs


def test_supervisord_image_carries_every_helper_its_programs_name(tmp_path: Path) -> None:
    """A program whose command is a helper (``%(here)s/../bin/<name>-liveness``, the
    liveness wrapper) finds it in the image: every ``bin`` link points at a file of
    the image's store, and the one programs file names only helpers that exist."""
    model = FIXTURES / "liveness" / "processes.py"
    image = build_image(str(model), resolve({}, {}),
                        ImageOptions(manager="supervisord", name="procmgmt/test", tag="live"))
    layer = _generation_layer(image)
    links = {line.split()[2]: line.split(" -> ")[1] for line in layer if " -> " in line}
    files = {line.split()[2] for line in layer if " -> " not in line}
    helpers = {p: t for p, t in links.items() if "/supervisord/processes/bin/" in p}
    assert {p.rsplit("/", 1)[1] for p in helpers} >= {"web-liveness", "worker-liveness"}
    assert all(t in files for t in helpers.values()), helpers
    conf_d = "/var/lib/procmgmt/supervisord/processes/conf.d"
    assert f"{conf_d}/programs.conf" in files
    assert not any(p.startswith(conf_d + "/") for p in links), "no per-program links"
