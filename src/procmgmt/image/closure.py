"""The host files an image must carry for the model to run: its closure.

nix-processmgmt's images carry the Nix closure of their processes; a Debian
host has no such graph, so it is rebuilt from what the model names:

- the executables (``daemon``, ``foreground_process``, the manager, the tools
  the generated scripts call), found on the search path when not absolute;
- every host file named in the model's arguments, environment and rendered files;
- for an ELF file, the shared libraries and loader ``ldd`` lists; for a script,
  the interpreter of its ``#!`` line; for a Python interpreter, its standard
  library (without tests, tkinter, IDLE and site-packages) and, in a venv, its
  ``pyvenv.cfg``;
- for an executable of a Debian package, the data files of its source package
  (``dpkg -S``, ``dpkg -L``: files under ``/etc/<source>``, ``/usr/share/<source>``),
  which is how nginx finds ``mime.types``.

Every symlink on the way (``/bin -> usr/bin``, ``python3 -> python3.11``) is
carried as a symlink, so paths resolve in the image as they do here. Each file
records why it went in (:meth:`Closure.listing`). What cannot be found is a
:class:`ClosureError` naming who asked for it.
"""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass, field

from procmgmt.errors import UsageError
from procmgmt.image.layer import host_mode
from procmgmt.image.tree import Tree

#: Paths never carried from the host: kernel file systems, per-boot state, and the
#: account files the image writes itself.
NEVER = ("/proc/", "/sys/", "/dev/", "/run/", "/tmp/", "/var/tmp/")
OWN_FILES = frozenset({"/etc/passwd", "/etc/group", "/etc/shadow", "/etc/gshadow"})
#: Standard library parts an image does without (tests, GUI, installers, build files).
PY_SKIP_DIRS = frozenset({"site-packages", "dist-packages", "test", "tests", "idlelib",
                          "tkinter", "turtledemo", "ensurepip", "lib2to3", "__pycache__"})
#: Extension modules left out with the packages above (tkinter pulls in X11).
PY_SKIP_MODULES = ("_tkinter", "_test", "xxlimited")
#: Prints what the image needs of a Python interpreter (run with that interpreter).
_PY_QUERY = ("import json, sys, sysconfig; print(json.dumps({'stdlib': "
             "sysconfig.get_paths()['stdlib'], 'dynload': sysconfig.get_config_var('DESTSHARED'),"
             " 'prefix': sys.prefix, 'base_prefix': sys.base_prefix}))")
_PYTHON = re.compile(r"python[0-9.]*")
_LDD_LIB = re.compile(r"^\s*(?:(\S+) => )?(\S+|not found)(?: \(0x[0-9a-f]+\))?$")
#: The data directories of a Debian source package that an image carries.
DATA_DIRS = ("/etc/{}/", "/usr/share/{}/")
#: Parts of /usr/share that programs never read at run time.
DATA_SKIP = ("/usr/share/doc/", "/usr/share/man/", "/usr/share/lintian/", "/usr/share/info/",
             "/usr/share/bug/")


class ClosureError(UsageError):
    """A file the model needs is not on this host (or cannot be read)."""


@dataclass
class Closure:
    """Host files (with why each is there), symlinks and directories to carry."""

    files: dict[str, str] = field(default_factory=dict)
    symlinks: dict[str, str] = field(default_factory=dict)
    dirs: dict[str, str] = field(default_factory=dict)

    def add_to(self, tree: Tree) -> None:
        """Put every carried path into ``tree`` at its host path."""
        for path, why in sorted(self.dirs.items()):
            tree.directory(path, origin=why)
        for path, target in sorted(self.symlinks.items()):
            tree.symlink(path, target, origin="symlink on the way to a carried file")
        for path, why in sorted(self.files.items()):
            tree.host_file(path, path, host_mode(path), origin=why)

    def listing(self) -> list[str]:
        """One line per carried path: ``PATH  (why)``, sorted by path."""
        rows = [(p, why) for p, why in self.files.items()]
        rows += [(p, f"symlink to {t}") for p, t in self.symlinks.items()]
        rows += [(p, f"directory: {why}") for p, why in self.dirs.items()]
        return [f"{p}  ({why})" for p, why in sorted(rows)]

    def size(self) -> int:
        """Bytes of the carried files."""
        return sum(os.path.getsize(p) for p in self.files)


def _is_elf(path: str) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(4) == b"\x7fELF"
    except OSError:
        return False


def _shebang(path: str) -> list[str] | None:
    try:
        with open(path, "rb") as f:
            head = f.read(256)
    except OSError:
        return None
    if not head.startswith(b"#!"):
        return None
    line = head[2:].split(b"\n", 1)[0].decode(errors="replace").split()
    return line or None


def _run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, check=False, text=True, capture_output=True,
                          stdin=subprocess.DEVNULL, env={**os.environ, "LC_ALL": "C"})


class Finder:
    """Collects a :class:`Closure` from roots, following libraries, interpreters,
    Python standard libraries and Debian data files."""

    def __init__(self, search_path: str, skip_prefixes: Iterable[str] = ()) -> None:
        self.search_path = search_path
        #: Image paths of the image's own (state dirs): never taken from the host.
        self.skip_prefixes = tuple(p.rstrip("/") + "/" for p in skip_prefixes)
        self.closure = Closure()
        self._seen: set[str] = set()
        self._sources_done: set[str] = set()
        self._owners_done: set[str] = set()

    # -- what the model names ---------------------------------------------------

    def which(self, name: str, path: str | None = None) -> str | None:
        """``name`` as an absolute path: itself when absolute, else found on ``path``
        (default: the finder's search path)."""
        if name.startswith("/"):
            return name if os.path.exists(name) else None
        for d in (path or self.search_path).split(":"):
            candidate = os.path.join(d, name)
            if d and os.path.isfile(candidate) and os.access(candidate, os.X_OK):
                return candidate
        return None

    def executable(self, name: str, why: str, path: str | None = None,
                   data_files: bool = True) -> str:
        """Carry executable ``name`` (found on ``path`` when relative) and what it
        needs; ClosureError naming ``why`` when it is not there. ``data_files``:
        also the data files of its Debian source package."""
        found = self.which(name, path)
        if found is None or not os.path.isfile(found):
            where = "" if name.startswith("/") else \
                f" (searched {path or self.search_path})"
            raise ClosureError(f"{why}: executable {name!r} not found on this host{where}")
        real = self.add(found, why)
        if data_files:
            self.package_data(found, real)
        return found

    def tool(self, name: str, why: str) -> bool:
        """Carry program ``name`` when it is on the search path and is a binary or a
        shell script (a Python or Perl script would pull in its whole runtime for a
        word that merely looked like a command); True when carried."""
        if _PYTHON.fullmatch(name) or name.startswith(("perl", "procmgmt")):
            return False
        found = self.which(name)
        if found is None:
            return False
        real = os.path.realpath(found)
        interp = _shebang(real)
        if interp and os.path.basename(interp[-1 if interp[0].endswith("/env") else 0]) \
                not in ("sh", "dash", "bash"):
            return False
        if not (_is_elf(real) or interp):
            return False
        self.add(found, why)
        return True

    def named_file(self, path: str, why: str) -> bool:
        """Carry host file ``path`` named by the model when it exists and is the
        host's to give (not a kernel file, not inside the image's own state
        directories); True when carried. A directory is created empty."""
        norm = os.path.normpath(path)
        if norm in OWN_FILES or (norm + "/").startswith(NEVER) \
                or (norm + "/").startswith(self.skip_prefixes) or norm == "/":
            return False
        if os.path.isfile(norm):
            self.add(norm, why, scripts=False)  # data: its #! line is its runner's business
            return True
        if os.path.isdir(norm):
            real = self._resolve(norm)
            self.closure.dirs.setdefault(real, why)
            return True
        return False

    # -- following ----------------------------------------------------------------

    def _resolve(self, path: str) -> str:
        """The real path of ``path``, recording every symlink met on the way."""
        parts = [p for p in path.split("/") if p]
        cur, hops = "/", 0
        while parts:
            part = parts.pop(0)
            if part == ".":
                continue
            if part == "..":
                cur = os.path.dirname(cur)
                continue
            nxt = os.path.join(cur, part)
            if os.path.islink(nxt):
                hops += 1
                if hops > 40:
                    raise ClosureError(f"{path}: too many levels of symbolic links")
                target = os.readlink(nxt)
                self.closure.symlinks[nxt] = target
                base = target if target.startswith("/") else os.path.join(cur, target)
                parts = [p for p in base.split("/") if p] + parts
                cur = "/"
            else:
                cur = nxt
        return cur

    def add(self, path: str, why: str, scripts: bool = True, libraries: bool = True) -> str:
        """Carry ``path`` (and what it needs); its real path. ``scripts``: follow a
        ``#!`` line (not for library files, whose ``#!`` lines are leftovers);
        ``libraries``: ask ldd (not for a library ldd listed: that list is whole)."""
        real = self._resolve(os.path.abspath(path))
        if real in self._seen:
            return real
        self._seen.add(real)
        try:
            st = os.stat(real)
        except OSError as exc:
            raise ClosureError(f"{why}: cannot read {path}: {exc.strerror or exc}") from None
        if not stat.S_ISREG(st.st_mode):
            raise ClosureError(f"{why}: {path} is not a regular file")
        if not os.access(real, os.R_OK):
            raise ClosureError(f"{why}: {path} is not readable")
        self.closure.files[real] = why
        if libraries and _is_elf(real):
            self._libraries(real, path)
            if _PYTHON.fullmatch(os.path.basename(path)):
                self._python(path)
        elif scripts:
            interp = _shebang(real)
            if interp:
                self._interpreter(interp, path)
        return real

    def _libraries(self, real: str, named: str) -> None:
        result = _run(["ldd", real])
        if result.returncode != 0:
            return  # static, or not for this machine: nothing to follow
        self._listed(result.stdout, named)

    def _listed(self, ldd_output: str, named: str) -> None:
        """Carry the libraries in ``ldd_output`` (of ``named``)."""
        for line in ldd_output.splitlines():
            m = _LDD_LIB.match(line)
            if not m:
                continue
            soname, lib = m.group(1), m.group(2)
            if lib == "not found":
                raise ClosureError(f"{named}: needs shared library {soname}, which ldd "
                                   "cannot find on this host")
            if lib.startswith("/"):
                self.add(lib, f"shared library of {named}", libraries=False)

    def _interpreter(self, interp: list[str], script: str) -> None:
        why = f"interpreter of {script}"
        if os.path.basename(interp[0]) == "env" and len(interp) > 1:
            self.executable(interp[0], why, data_files=False)
            name = next((a for a in interp[1:] if not a.startswith("-")), None)
            if name:
                self.executable(name, why, data_files=False)
            return
        self.executable(interp[0], why, data_files=False)

    def _python(self, interpreter: str) -> None:
        """The standard library of ``interpreter`` (and its venv's pyvenv.cfg)."""
        result = _run([interpreter, "-I", "-c", _PY_QUERY])
        if result.returncode != 0:
            raise ClosureError(f"{interpreter}: cannot ask this Python for its standard "
                               f"library: {result.stderr.strip()}")
        info = json.loads(result.stdout)
        why = f"standard library of {interpreter}"
        if info["prefix"] != info["base_prefix"]:
            cfg = os.path.join(info["prefix"], "pyvenv.cfg")
            if os.path.isfile(cfg):
                self.add(cfg, f"venv configuration of {interpreter}")
        stdlib = self._resolve(info["stdlib"])
        for root, dirs, files in os.walk(stdlib):
            dirs[:] = sorted(d for d in dirs if d not in PY_SKIP_DIRS
                             and not d.startswith("config-"))
            for name in sorted(files):
                if name.endswith((".pyc", ".pyo", ".a", ".exe")):
                    continue
                path = os.path.join(root, name)
                if os.path.islink(path) and not os.path.exists(path):
                    continue
                if name.endswith(".so"):
                    self._optional_module(path, why)
                else:
                    self.add(path, why, scripts=False)

    def _optional_module(self, path: str, why: str) -> None:
        """An extension module: carried with its libraries, left out (not an error)
        when one of them is missing here (tkinter without Tk, say)."""
        if os.path.basename(path).startswith(PY_SKIP_MODULES):
            return
        result = _run(["ldd", path])
        if "not found" in result.stdout:
            return
        self.add(path, why, scripts=False, libraries=False)
        if result.returncode == 0:
            self._listed(result.stdout, path)

    # -- Debian data files ----------------------------------------------------------

    def package_data(self, named: str, real: str) -> None:
        """The data files of the Debian source package that ships ``named``."""
        if real in self._owners_done:
            return
        self._owners_done.add(real)
        package = _owner(named, real)
        if package is None:
            return
        source = _query(package, "${source:Package}") or package
        if source in self._sources_done:
            return
        self._sources_done.add(source)
        packages = [package] + [dep for dep in _depends(package)
                                if _query(dep, "${source:Package}") == source]
        prefixes = tuple(d.format(source) for d in DATA_DIRS)
        why = f"data file of Debian source package {source} (of {named})"
        for pkg in packages:
            for path in _run(["dpkg", "-L", pkg]).stdout.splitlines():
                if not path.startswith(prefixes) or path.startswith(DATA_SKIP):
                    continue
                if os.path.isfile(path) and os.access(path, os.R_OK):
                    self.add(path, why, scripts=False)


def _owner(named: str, real: str) -> str | None:
    """The Debian package that ships ``named``, or None (no dpkg, or no package). Tried
    as named, then by its real path under both of its merged-/usr names: dpkg
    records /bin/dash, not /usr/bin/dash."""
    if not _has_dpkg():
        return None
    other = real.removeprefix("/usr") if real.startswith("/usr/") else "/usr" + real
    for candidate in dict.fromkeys((named, real, other)):
        result = _run(["dpkg", "-S", candidate])
        if result.returncode == 0:
            # "pkg: /path", "pkg:amd64: /path" or "pkg1, pkg2: /path"
            return result.stdout.split(":", 1)[0].split(",")[0].strip()
    return None


def _has_dpkg() -> bool:
    return any(os.access(os.path.join(d, "dpkg"), os.X_OK) for d in ("/usr/bin", "/bin"))


def _query(package: str, fmt: str) -> str:
    result = _run(["dpkg-query", "-W", "-f", fmt, package])
    return result.stdout.strip() if result.returncode == 0 else ""


def _depends(package: str) -> list[str]:
    deps = _query(package, "${Depends}")
    names = []
    for alternative in deps.split(","):
        name = alternative.split("|")[0].strip().split(" ")[0].split(":")[0]
        if name:
            names.append(name)
    return names
