"""Schema commands (``maslow schema ...``): infer, validate, diff, migrate, cost, json-schema."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from maslow import io
from maslow.cli._destination import OverwriteOpt, check_images_kept, read_paths
from maslow.cli._flags import flags_named
from maslow.cli.render import console, either, format_name, lit, load_dataset, print_json, render_report, table
from maslow.core.atomic import walked
from maslow.core.yamlfile import read_yaml
from maslow.errors import FormatError, MaslowError, SchemaError

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts instead of tables.")]
FromOpt = Annotated[str | None, typer.Option("--from", "-f", help="Format of DATASET; omit it to name a "
                                                                  "workspace version or dataset instead.")]
DatasetArg = Annotated[str | None, typer.Argument(help="File or folder (with --from), or a workspace version or "
                                                       "dataset name (default: the workspace head).")]
#: ``--output``, the old spelling of ``--out`` (as qa, predict, crossval and train spell it), kept for scripts
OutputOpt = Annotated[Path | None, typer.Option("--output", hidden=True)]

schema_app = typer.Typer(help="The label schema: infer, validate, diff, migrate, annotation cost.",
                         no_args_is_help=True)


def _pairs(values: list[str], what: str, form: str = "OLD=NEW") -> dict[str, str]:
    out: dict[str, str] = {}
    for v in values:
        old, sep, new = v.partition("=")
        if not sep or not old or not new:
            raise MaslowError(f"{what}: must be {form}, got {v!r}")
        if old in out:
            raise MaslowError(f"{what}: must name {old!r} once, got {old}={out[old]} and {v}")
        out[old] = new
    return out


def _keypoint_pairs(values: list[str]) -> dict[str, dict[str, str]]:
    """``--rename-keypoint CLASS:OLD=NEW`` values as {class: {old: new}} (the class is before the last ``:``)."""
    out: dict[str, dict[str, str]] = {}
    for v in values:
        left, sep, new = v.partition("=")
        cls, colon, old = left.rpartition(":")
        if not sep or not colon or not cls or not old or not new:
            raise MaslowError(f"--rename-keypoint: must be CLASS:OLD=NEW, got {v!r}")
        if old in out.get(cls, {}):
            raise MaslowError(f"--rename-keypoint: must name {cls}:{old} once, got it renamed to "
                              f"{out[cls][old]!r} and {new!r}")
        out.setdefault(cls, {})[old] = new
    return out


RenameOpt = Annotated[list[str] | None, typer.Option(
    "--rename", help="OLD=NEW class rename hint (repeatable; several classes renamed into one are merged, which "
                     "is lossy).")]
RenameAttrOpt = Annotated[list[str] | None, typer.Option("--rename-attribute", help="OLD=NEW attribute rename hint.")]
RenameKpOpt = Annotated[list[str] | None, typer.Option(
    "--rename-keypoint", help="CLASS:OLD=NEW keypoint rename hint (CLASS as in the old schema).")]


def _plan(old: Any, new: Any, rename: list[str] | None, rename_attribute: list[str] | None,
          rename_keypoint: list[str] | None, *, command: str) -> Any:
    from maslow.ontology import plan_migration

    flags = {"plan_migration: rename": f"{command}: --rename",
             "plan_migration: attribute rename": f"{command}: --rename-attribute",
             "plan_migration: keypoint rename": f"{command}: --rename-keypoint",
             "plan_migration: keypoint renames": f"{command}: --rename-keypoint values"}
    with flags_named(flags):  # the hints' messages name the flag that gave them, not plan_migration's parameter
        return plan_migration(old, new, renames=_pairs(rename or [], "--rename"),
                              attribute_renames=_pairs(rename_attribute or [], "--rename-attribute"),
                              keypoint_renames=_keypoint_pairs(rename_keypoint or []))


def schema_diff_rows(d: Any) -> list[tuple[str, str, str]]:
    """(what, change, name) rows of a ``SchemaDiff``, as ``schema diff`` and ``maslow diff`` print them."""
    dd = d.to_dict()
    rows: list[tuple[str, str, str]] = [("class", "added", n) for n in dd["added_classes"]]
    rows += [("class", "removed", n) for n in dd["removed_classes"]]
    rows += [("class", "changed", f"{n}: " + ", ".join(f"{f} {v['old']!r} -> {v['new']!r}" for f, v in ch.items()))
             for n, ch in dd["changed_classes"].items()]
    rows += [("attribute", "added", n) for n in dd["added_attributes"]]
    rows += [("attribute", "removed", n) for n in dd["removed_attributes"]]
    rows += [("attribute", "changed", f"{n}: " + ", ".join(f"{f} {v['old']!r} -> {v['new']!r}" for f, v in ch.items()))
             for n, ch in dd["changed_attributes"].items()]
    if dd["order_changed"]:
        rows.append(("classes", "reordered", "label ids change"))
    for key in ("tasks", "guidelines"):
        if dd[key] is not None:
            rows.append(("schema", "changed", f"{key} {dd[key][0]!r} -> {dd[key][1]!r}"))
    rows += [("class guidelines", "changed", f"{n}: " + ", ".join(f"{f} {v['old']!r} -> {v['new']!r}"
                                                                  for f, v in ch.items()))
             for n, ch in dd["class_guidelines"].items()]
    return rows


@schema_app.command("infer")
def infer(
    dataset: DatasetArg = None,
    fmt: FromOpt = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Write schema.yaml here.")] = None,
    as_json: JsonOpt = False,
    output_old: OutputOpt = None,
) -> None:
    """Draft a schema from the annotations: label types per class, attribute types and values, keypoints."""
    from maslow.ontology import infer_schema, save_schema
    from maslow.ontology.schema_file import schema_to_dict

    out, _ = either(out, output_old, ("--out", "--output"))

    schema = infer_schema(load_dataset(dataset, fmt))
    if out is not None:
        save_schema(schema, out)
    if as_json:
        print_json(schema_to_dict(schema))
    elif out is None:  # the text save_schema writes (PyYAML's safe_dump turns a NEL in a name into a space)
        from maslow.ontology._step import dump_yaml

        console.file.write(dump_yaml(schema_to_dict(schema)))
    else:
        console.print(f"Wrote a draft schema ({len(schema.classes)} classes, {len(schema.attributes)} attributes) "
                      f"to {lit(out)}")


@schema_app.command("validate")
def validate(
    dataset: DatasetArg = None,
    fmt: FromOpt = None,
    schema_path: Annotated[Path, typer.Option("--schema", "-s", help="The schema.yaml to hold the data to.")] = Path(
        "schema.yaml"),
    strict: Annotated[bool, typer.Option("--strict", help="Exit with code 2 when any violation is found.")] = False,
    top: Annotated[int | None, typer.Option("--top", "-n", min=0, help="Violations to list (default 20; --json "
                                            "lists all).")] = None,
    as_json: JsonOpt = False,
    limit_old: Annotated[int | None, typer.Option("--limit", min=0, hidden=True)] = None,  # before --top
) -> None:
    """Check every annotation against the schema; each violation with its location, counts per rule."""
    from maslow.ontology import load_schema
    from maslow.ontology import validate as run

    shown, _ = either(top, limit_old, ("--top", "--limit"))
    limit: int = 20 if shown is None else shown

    # one annotation file read with --from: violations name it and each annotation's id, as the import checks do
    source = dataset if fmt is not None and dataset is not None and Path(dataset).is_file() else None
    report = run(load_dataset(dataset, fmt), load_schema(schema_path), source=source)
    if as_json:
        print_json(report)
    elif len(report):
        render_report(report, limit=limit)
    else:
        console.print("[green]Every annotation fits the schema.[/green]")
    if strict and len(report):
        raise typer.Exit(2)


@schema_app.command("diff")
def diff(
    old: Annotated[Path, typer.Argument(help="The old schema.yaml.")],
    new: Annotated[Path, typer.Argument(help="The new schema.yaml.")],
    rename: RenameOpt = None,
    rename_attribute: RenameAttrOpt = None,
    rename_keypoint: RenameKpOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """What changed between two schemas (class guidelines included), and the migration steps it implies (exit 2
    when the hints can't be planned)."""
    from maslow.ontology import MergeClasses, diff_schemas, read_schema_document

    da, db = read_schema_document(old), read_schema_document(new)
    d = diff_schemas(da, db)
    plan = _plan(da.schema, db.schema, rename, rename_attribute, rename_keypoint, command="schema diff")
    if as_json:
        print_json({"diff": d, "migration": plan})
        return
    if d.empty:
        console.print("The schemas are the same.")
    else:
        console.print(table(f"Schema v{d.versions[0]} -> v{d.versions[1]}", ["what", "change", "name"],
                            schema_diff_rows(d)))
    if plan.steps:
        console.print(table("Planned migration", ["#", "step"],
                            [(i, s.describe()) for i, s in enumerate(plan.steps)]))
    elif not d.empty:  # only notes for annotators differ: the data stays as it is
        console.print("No migration step: the annotations stay as they are (`schema migrate --to` writes the new "
                      "class guidelines beside the data).")
    merges = [s for s in plan.steps if isinstance(s, MergeClasses) and s.keep_as is None]
    if merges:
        what = ", ".join(f"{'+'.join(s.classes)} -> {s.into}" for s in merges)
        console.print(f"[yellow]merge_classes forgets which class each annotation had ({what}): lossy where the "
                      f"data has more than one of them, so `schema migrate` needs --allow-lossy.[/yellow]")


@schema_app.command("migrate")
def migrate(
    dataset: DatasetArg = None,
    fmt: FromOpt = None,
    to: Annotated[Path | None, typer.Option("--to", help="The target schema.yaml (the plan is derived).")] = None,
    migration: Annotated[Path | None, typer.Option("--migration", "-m", help="A migration file to replay.")] = None,
    current: Annotated[Path | None, typer.Option(
        "--current", help="The schema.yaml the data follows now: its definitions, class order and version (default: "
                     "what the format carries); classes matched by name.")] = None,
    rename: RenameOpt = None,
    rename_attribute: RenameAttrOpt = None,
    rename_keypoint: RenameKpOpt = None,
    allow_lossy: Annotated[bool, typer.Option("--allow-lossy", help="Allow steps that lose information.")] = False,
    any_version: Annotated[bool, typer.Option(
        "--any-version", help="Replay --migration whatever the data's schema version (formats without one).")] = False,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Write the migrated dataset here.")] = None,
    to_format: Annotated[str | None, typer.Option("--to-format", "-t", help="Format of the output.")] = None,
    commit: Annotated[bool, typer.Option("--commit", help="Commit a new workspace version.")] = False,
    message: Annotated[str, typer.Option("--message", help="Message of the committed version (--commit).")] = "",
    overwrite: OverwriteOpt = False,
    as_json: JsonOpt = False,
    output_old: OutputOpt = None,
) -> None:
    """Migrate a dataset to a new schema; writes the dataset, the change log and the replayable migration file.

    Beside OUT it writes OUT's stem + ``.changes.json`` (the change log), ``.migration.yaml`` (replay it with
    ``--migration``) and ``.schema.yaml`` (the migrated schema). An OUT folder that is not empty needs --overwrite;
    none of the files read (DATASET, --to, --migration, --current) is ever replaced.
    """
    from maslow.ontology import adopt_schema, load_migration, load_schema, read_schema_document
    from maslow.ontology import migrate as run

    out, _ = either(out, output_old, ("--out", "--output"))
    if (to is None) == (migration is None):
        raise MaslowError("schema migrate: give exactly one of --to NEW.yaml and --migration FILE")
    if to is not None and not to.exists():
        _refuse_format_as_schema(to)
    if out is None and not commit:
        raise MaslowError("schema migrate: give -o OUT --to-format FMT, or --commit (in a workspace)")
    if out is not None and to_format is None:
        raise MaslowError("schema migrate: --to-format FMT is required with -o OUT")
    if to_format is not None:
        to_format = format_name(to_format, "--to-format")
    folders: list[Path] = []
    if out is not None:  # before anything is read: the files read, a workspace, a folder not empty (no --overwrite)
        assert to_format is not None
        data = read_paths(Path(dataset), format_name(fmt, "--from")) if dataset is not None and fmt is not None \
            else []
        read = [*data, *[p for p in (to, migration, current) if p is not None]]
        folders = _check_outputs(out, to_format, overwrite=overwrite, sources=read)
    checked = walked(folders)  # the check looked through them for a workspace: the writer doesn't again
    read_id: str | None = None
    read_ref = dataset
    if commit and fmt is None:  # the head read, then loaded by id: the commit is refused if it moved (compare-and-swap)
        from maslow.store import Workspace

        read_ws = Workspace.find()
        read_id = read_ws.resolve(dataset)
        read_ref = f"{read_ws.record(read_id).dataset}@{read_id}"
    ds = load_dataset(read_ref, fmt)
    check_images_kept(folders, ds, flag="--out", dst=out)
    if current is not None:  # the data follows that schema (definitions, order and version), classes by name
        ds = adopt_schema(ds, load_schema(current), where=f"--current {current}")
    notes: dict[str, Any] = {}
    if migration is not None:
        plan = load_migration(migration)
    else:
        assert to is not None
        target = read_schema_document(to)
        notes = dict(target.class_notes)
        plan = _plan(ds.schema, target.schema, rename, rename_attribute, rename_keypoint, command="schema migrate")
    result = run(ds, plan, allow_lossy=allow_lossy, check_version=not any_version)
    written: dict[str, Any] = {}
    if out is not None:
        assert to_format is not None
        with checked:
            written.update(_write_migration(result, plan, out, to_format, notes))
    if commit:
        if fmt is not None:
            raise MaslowError("schema migrate: --commit applies to workspace versions (omit --from)")
        from maslow.store import Workspace

        ws = Workspace.find()
        assert read_id is not None
        base = ws.record(read_id)  # the version read, not the head now: a commit made meanwhile is never undone
        # base: a migration of an older version would drop the versions after it from the head: refused
        v = ws.commit(result.dataset, dataset=base.dataset, message=message or f"schema migration ({len(plan.steps)} "
                      f"steps) to v{result.dataset.schema.version}", changes=list(result.changes), base=base.id)
        written["version"] = v.to_dict()
    if as_json:
        print_json({"result": result, **written})
        return
    console.print(table(f"Change log (schema v{ds.schema.version} -> v{result.dataset.schema.version})",
                        ["#", "step", "touched", "lost", "annotations after"],
                        [(c["step"], c["description"], c["touched"], c["lost"], c["n_annotations"])
                         for c in result.changes]))
    if result.lossy:
        console.print("[yellow]This migration lost information (allowed by --allow-lossy).[/yellow]")
    if result.n_violating:
        rules = ", ".join(f"{k} {v}" for k, v in result.violations.items())
        console.print(f"[yellow]Note: {result.n_violating} annotations do not fit the new schema ({rules}): values "
                      f"are kept as they were (a retyped or narrowed attribute, a new required one); `maslow schema "
                      f"validate` with the new schema lists them.[/yellow]")
    for k in ("changes", "migration", "schema"):
        if k in written:
            console.print(f"{k}: {lit(written[k])}")
    if "export" in written:
        d = written["export"].to_dict()
        console.print(f"Wrote {d['n_annotations']} annotations as {lit(d['format'])} to {lit(d['path'])}")
    if "version" in written:
        console.print(f"Committed {lit(written['version']['dataset'])}@{lit(written['version']['id'])}")


def _refuse_format_as_schema(to: Path) -> None:
    """``--to coco`` (as ``maslow convert`` and ``export`` spell the output format) names no schema file: say so."""
    from maslow.io.registry import get_format

    try:
        spec = get_format(str(to))
    except FormatError:
        return  # not a format name: reading the file names it
    raise MaslowError(f"schema migrate: --to must be the target schema.yaml, got {str(to)!r}, a format name and no "
                      f"file; the output format is --to-format {spec.name} (with -o OUT)")


#: the files ``schema migrate`` writes beside OUT, after OUT's stem
_SIDE_FILES = {"changes": ".changes.json", "migration": ".migration.yaml", "schema": ".schema.yaml"}


def _side_paths(out: Path) -> dict[str, Path]:
    stem = out.parent / (out.stem if out.suffix else out.name)
    return {k: stem.with_name(stem.name + v) for k, v in _SIDE_FILES.items()}


def _check_outputs(out: Path, to_format: str, *, overwrite: bool, sources: list[Path]) -> list[Path]:
    """``check_destination`` for OUT, and the files beside it must not be files read (``--current old.schema.yaml``
    with ``-o old.json`` replaced the schema read by the migrated one). Gives the folders for ``check_images_kept``."""
    from maslow.cli._destination import check_destination, check_side_file

    folders = check_destination(out, to_format, overwrite=overwrite, sources=sources, options={}, flag="--out")
    for k, p in _side_paths(out).items():
        check_side_file(p, dst=out, what=f"the {k} file", sources=sources, flag="--out")
    return folders


def _write_migration(result: Any, plan: Any, out: Path, to_format: str, notes: dict[str, Any]) -> dict[str, Any]:
    """Write the dataset and, beside it, the change log, the migration and the schema: all of them or none (the
    three files wait under temporary names until the dataset is written)."""
    from contextlib import ExitStack

    from maslow.core.atomic import atomic_path
    from maslow.ontology._step import dump_yaml
    from maslow.ontology.schema_file import schema_to_dict

    paths = _side_paths(out)
    kept = {k: v for k, v in notes.items() if k in result.dataset.schema}
    texts = {"changes": json.dumps(result.to_dict(), indent=1, ensure_ascii=False),
             "migration": dump_yaml(plan.to_dict()), "schema": dump_yaml(schema_to_dict(result.dataset.schema, kept))}
    for k, p in paths.items():
        if p.is_dir():
            raise FormatError(f"the {k} file must be a writable path, got a folder", path=p)
    with ExitStack() as stack:
        for k, p in paths.items():
            stack.enter_context(atomic_path(p)).write_text(texts[k], encoding="utf-8")
        export = io.write(result.dataset, out, to_format)
    return {"export": export, **{k: str(p) for k, p in paths.items()}}


@schema_app.command("cost")
def cost(
    dataset: DatasetArg = None,
    fmt: FromOpt = None,
    rates: Annotated[Path | None, typer.Option("--rates", help="YAML mapping of rates (seconds), e.g. box: 34.5")] = None,
    strategy: Annotated[list[str] | None, typer.Option(
        "--strategy", help="NAME=TYPE[+TYPE...] to price, e.g. boxes=box or seg=polygon+box (repeatable).")] = None,
    time_field: Annotated[str, typer.Option(help="annotations.extra column with annotation timestamps.")] = "created",
    as_json: JsonOpt = False,
) -> None:
    """Estimated labelling time per class and label type, per strategy; measured throughput per annotator."""

    from maslow.ontology import CostRates, annotator_throughput, compare_strategies

    ds = load_dataset(dataset, fmt)
    r = CostRates()
    if rates is not None:
        data = read_yaml(rates, what="rates file")
        if data is None:  # an empty file (or comments only): refused, as --schema refuses one
            raise FormatError("--rates must be a mapping of label type: seconds, got an empty document (leave out "
                              "--rates for the default rates)", path=rates)
        if not isinstance(data, dict):
            raise FormatError(f"must be a mapping of label type: seconds, got {type(data).__name__}", path=rates)
        try:
            r = CostRates.from_dict(data)
        except SchemaError as e:
            raise FormatError(str(e), path=rates) from None
    strategies: dict[str, Any] = {"as annotated": None}
    for name, types in _pairs(strategy or [], "--strategy", "NAME=TYPE[+TYPE...]").items():
        strategies[name] = [t for t in types.split("+") if t]
    with flags_named({"estimate_cost: label type": "schema cost: --strategy: label type"}):
        results = compare_strategies(ds, strategies, rates=r)
    tp = annotator_throughput(ds, time_field=time_field)
    if as_json:
        print_json({"strategies": results, "throughput": tp})
        return
    console.print(table("Annotation cost per strategy", ["strategy", "label types", "hours"],
                        [(n, est.strategy, round(est.total_hours, 3)) for n, est in results.items()]))
    for name, est in results.items():
        rows = [(c, *[round(float(x) / 60, 2) for x in est.seconds[i]], round(float(est.seconds[i].sum()) / 60, 2))
                for i, c in enumerate(est.names)]
        console.print(table(f"{name}: minutes per class", ["class", "box", "mask", "polygon", "keypoints", "tag",
                                                            "attributes", "total"], rows))
    if tp.annotators:
        console.print(table("Throughput per annotator", ["annotator", "annotations", "active hours", "per hour"],
                            [(a, int(tp.n_annotations[i]), round(float(tp.active_seconds[i]) / 3600, 2),
                              round(float(tp.per_hour[i]), 1)) for i, a in enumerate(tp.annotators)]))


@schema_app.command("json-schema")
def json_schema() -> None:
    """Print the JSON Schema of schema.yaml (for editor validation and completion)."""
    from maslow.ontology import schema_json_schema

    print_json(schema_json_schema())


def register(app: typer.Typer) -> None:
    app.add_typer(schema_app, name="schema")
