"""Build: model -> validated specs -> rendered files -> store entries -> generation.

Rendering (:func:`render`) is pure and is what ``generate`` and the golden
tests use; :func:`build` additionally writes the store and a generation
entry whose ``manifest.json`` tells the engine what runs where.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any

from procmgmt.backends import get_backend
from procmgmt.backends.base import Backend, BuildContext, File
from procmgmt.backends.lifecycle import lifecycle_problems
from procmgmt.deploy import store
from procmgmt.deploy.rendercache import RenderCache
from procmgmt.errors import Problem, UserCodeError, ValidationError, storage
from procmgmt.ids import check_assigned, credentials_with_ids, missing_assignments
from procmgmt.manifest import MANIFEST, DeployedProcess, Generation, dumps, load_generation
from procmgmt.model.contain import user_code
from procmgmt.model.loader import Model, empty_model, load_model
from procmgmt.model.spec import ProcessSpec
from procmgmt.settings import Settings
from procmgmt.testhooks import fail_point
from procmgmt.validate import validate


@dataclass
class Rendered:
    """The rendered files of one process (none when the render cache had them:
    ``stored`` is then the store entry they are in)."""

    spec: ProcessSpec
    files: list[File]
    extra: dict[str, Any]
    stored: str | None = None


@dataclass
class RenderResult:
    """Everything one backend generates for a model."""

    backend: Backend
    processes: list[Rendered]
    generation_files: list[File]
    warnings: list[str] = field(default_factory=list)


def evaluate(model_path: str | None, settings: Settings) -> tuple[Model, list[ProcessSpec]]:
    """Load (or, for None, take the empty model) and validate."""
    model = empty_model() if model_path is None else load_model(model_path, settings)
    if settings.ids_file:
        # An instance that needs unique IDs the ids file lacks: say so (run
        # id-assign) instead of letting a placeholder 0 port fail more vaguely.
        check_assigned(model.instances, settings.ids, settings.ids_file)
        return model, validate(model, settings)
    try:
        return model, validate(model, settings)
    except ValidationError as exc:
        # Models may fall back to defaults without an ids file; if that did not
        # work out, point at the missing IDs as the likely cause.
        hints = [Problem(f"requires an ID from {res!r} and no --ids file was given: run "
                         "'procmgmt switch --assign-ids --id-resources FILE --ids FILE' "
                         "or 'procmgmt id-assign'", inst, None, model.file, None)
                 for inst, res in missing_assignments(model.instances, settings.ids)]
        if hints:
            raise ValidationError([*exc.problems, *hints]) from None
        raise


def render(model: Model, specs: Sequence[ProcessSpec], settings: Settings,
           backend: Backend | None = None, cache: RenderCache | None = None,
           keep: Callable[[Rendered], Rendered] | None = None) -> RenderResult:
    """Render every spec with the settings' backend (pure: no file is written).

    With a ``cache``, a process whose inputs are unchanged since the cache
    recorded it is not rendered: its :class:`Rendered` names the store entry.
    ``keep`` is given each process as soon as it is rendered, and what it
    returns is kept instead (:func:`build` stores the files then and keeps
    only the entry's path, so a large model's files are never all in memory)."""
    backend = backend or get_backend(settings.process_manager)
    by_name = {inst.process.effective_name: (key, inst) for key, inst in model.instances.items()}
    origins = {str(pname): (key, *(inst.origin if inst.origin[0] else (model.file, None)))
               for pname, (key, inst) in by_name.items()}
    make_context = cache.context if cache is not None else BuildContext
    ctx = make_context(settings=settings, specs={s.name: s for s in specs}, origins=origins,
                       processes={str(pname): inst.process
                                  for pname, (_, inst) in by_name.items()})

    def problem(pname: str, fieldname: str, message: str) -> Problem:
        found = ctx.problem(pname, fieldname, message)
        return found if pname in origins else dataclasses.replace(found, file=model.file)

    problems = [*lifecycle_problems(backend.capabilities.lifecycle, specs, ctx),
                *backend.validate(specs, ctx)]
    if problems:
        raise ValidationError([dataclasses.replace(p, message=f"{backend.name}: {p.message}")
                               for p in problems])

    def render_one(current: ProcessSpec) -> Rendered:
        # An override function is user code: contained like the model's evaluation
        # (and only then: the time limit is the function's, not the whole render's).
        guard = (user_code(model.file, settings.model_timeout, blame_file=False)
                 if callable(current.override_for(backend.name)) else nullcontext())
        seen = len(ctx.warnings)
        try:
            with guard:
                if cache is None:
                    return Rendered(current, *backend.render_process(current, ctx))
                with cache.recording(current) as rec:
                    fresh = Rendered(current, *backend.render_process(current, ctx))
        except UserCodeError as exc:
            raise ValidationError([Problem(f"{backend.name}: the override function failed: "
                                           f"{exc.reason}", by_name.get(current.name,
                                                                        (current.name,))[0],
                                           f"overrides.{backend.name}", exc.file or model.file,
                                           exc.line)]) from None
        except (TypeError, ValueError, KeyError) as exc:
            # Almost always a bad override; name it instead of a traceback.
            raise ValidationError([problem(
                current.name, f"overrides.{backend.name}",
                f"{backend.name}: rendering failed: {exc} (check overrides[{backend.name!r}])",
            )]) from None
        cache.rendered(current, rec.reads, fresh.extra, ctx.warnings[seen:])
        return fresh

    rendered = []
    for spec in specs:
        hit = cache.lookup(spec) if cache is not None else None
        if hit is not None:
            ctx.warnings.extend(hit.warnings)
            rendered.append(Rendered(spec, [], hit.extra, hit.path))
            continue
        fresh = render_one(spec)
        rendered.append(keep(fresh) if keep is not None else fresh)
    gen_files = backend.generation_files(specs, ctx)
    return RenderResult(backend, rendered, gen_files, ctx.warnings)


def store_rendered(model: Model, specs: Sequence[ProcessSpec], settings: Settings) -> str:
    """The store path of one entry holding every file the settings' backend renders.

    For a backend whose output is not deployed (``none``: agnostic specs that
    refer to each other by relative file name) one self-contained directory
    is what the user copies elsewhere; it is no GC root (``procmgmt gc``
    deletes it), there is no generation. The caller holds the store lock."""
    result = render(model, specs, settings)
    files = [f for r in result.processes for f in r.files] + result.generation_files
    name = result.backend.name
    with storage("write the store entry of the " + name + " backend", settings.store_dir):
        return store.add(settings.store_dir, name, name, files)


def _credentials_json(spec: ProcessSpec, settings: Settings) -> dict[str, Any]:
    # Users/groups without an explicit uid/gid take the one the ids file assigned
    # to the same name (resources "uids"/"gids"), as createCredentials does.
    creds = credentials_with_ids(spec.credentials, settings.ids)
    return {
        "groups": {k: dataclasses.asdict(v) for k, v in creds.groups.items()},
        "users": {k: dataclasses.asdict(v) for k, v in creds.users.items()},
    }


def build(model: Model, specs: Sequence[ProcessSpec], settings: Settings, *,
          use_cache: bool = True) -> Generation:
    """Render and store every process, then store the generation and return it.

    Processes whose inputs did not change since the last build of this profile
    and backend come from the render cache (:mod:`procmgmt.deploy.rendercache`)
    unless ``use_cache`` is False; the generation is the same either way."""
    backend = get_backend(settings.process_manager)
    name = backend.name
    cache = RenderCache.open(settings, backend) if use_cache else None

    def store_now(r: Rendered) -> Rendered:
        # Each process's files go to the store as soon as they are rendered.
        with storage("write the store entry of " + r.spec.name, settings.store_dir):
            fail_point("build")
            path = store.add(settings.store_dir, r.spec.name, name, r.files)
        if cache is not None:
            cache.stored(r.spec, path)
        return dataclasses.replace(r, files=[], stored=path)

    result = render(model, specs, settings, backend, cache, keep=store_now)
    meta_of = {inst.process.effective_name: _json_safe(inst.metadata)
               for inst in model.instances.values()}
    procs: list[DeployedProcess] = []
    for r in result.processes:
        path = r.stored
        assert path is not None
        procs.append(DeployedProcess(
            name=r.spec.name,
            hash=store.entry_hash(path),
            path=path,
            rank=r.spec.rank,
            dependencies=tuple(r.spec.dependencies),
            pid_file=r.spec.derived_pid_file(settings),
            user=r.spec.effective_user(settings),
            credentials=_credentials_json(r.spec, settings),
            readiness=_readiness_json(r.spec),
            extra=r.extra,
            metadata=meta_of.get(r.spec.name, {}),
            executables=tuple(x for x in (r.spec.daemon, r.spec.foreground) if x),
            search_path=r.spec.path_value(),
            directory=r.spec.directory,
            reload_signal=r.spec.reload_signal,
            restart=r.spec.restart,
            liveness=r.spec.liveness.to_json() if r.spec.liveness is not None else None,
        ))
    extras = None
    if result.generation_files:
        with storage(f"write the store entry of the {name} base files", settings.store_dir):
            extras = store.add(settings.store_dir, f"{name}-base", name,
                               result.generation_files)
    gen = Generation(
        backend=name,
        # Not stored: the manifest does not know where it will be.
        path="",
        processes=tuple(procs),
        extras_path=extras,
        settings={**settings.dirs(),
                  "force_disable_user_change": settings.force_disable_user_change,
                  "profile": settings.profile},
        warnings=tuple(result.warnings),
        model=model.file,
    )
    # 0600 (read-only once stored): the manifest lists credentials, passwords included.
    with storage("write the generation's manifest", settings.store_dir):
        gen_path = store.add(settings.store_dir, f"{settings.profile}-generation",
                             "generation", [File(MANIFEST, dumps(gen), mode=0o600)])
    if cache is not None:
        cache.save()
    return load_generation(gen_path)


def _json_safe(metadata: dict[str, Any]) -> dict[str, Any]:
    """The metadata values that are plain JSON scalars (ports, names, dirs)."""
    return {k: v for k, v in metadata.items()
            if isinstance(v, (str, int, float, bool)) or v is None}


def _readiness_json(spec: ProcessSpec) -> Any:
    to_json = getattr(spec.readiness, "to_json", None)
    return to_json() if callable(to_json) else None
