"""Selection commands: select (diverse ordering of what to label first), embed, outliers."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer

from maslow.cli._flags import flags_named
from maslow.cli.render import (
    console,
    either,
    err_console,
    fold_columns,
    lit,
    load_dataset,
    no_images,
    print_json,
    progress_bar,
    step_bars,
    table,
)

DatasetArg = Annotated[str | None, typer.Argument(
    help="An image folder (no --from needed), a file/folder with --from, or a workspace version.")]
FromOpt = Annotated[str | None, typer.Option("--from", "-f", help="Format of DATASET (see `maslow formats`).")]
EmbedderOpt = Annotated[str, typer.Option(
    "--embedder", "-e", help="auto (EfficientNet-Lite0 with torch, else light), light, efficientnet-lite0, "
    "torchvision:<arch> (local weights only).")]
CacheOpt = Annotated[Path | None, typer.Option("--cache-dir", help="Embedding cache folder.")]
NoCacheOpt = Annotated[bool, typer.Option("--no-cache", help="Neither read nor write the embedding cache.")]
DeviceOpt = Annotated[str | None, typer.Option(
    "--device", help="Device of the torch embedders: cpu, cuda, cuda:N, mps or xpu (default: cuda when available, "
    "else cpu); the light embedder runs on the CPU, and a device this machine lacks is refused for it too.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts instead of tables.")]
ImagesRootOpt = Annotated[Path | None, typer.Option("--images-root", help="Folder the image paths are relative to.")]
#: ``--output``, the old spelling of ``--out`` (as qa, predict, crossval and train spell it), kept for scripts
OutputOpt = Annotated[Path | None, typer.Option("--output", hidden=True)]


def _cache(path: Path | None, no_cache: bool = False) -> Path | None:
    """``--cache-dir`` checked before embedding: a file there was a traceback (NotADirectoryError, exit 1) after
    the first batch was embedded (not with ``--no-cache``, which leaves the cache alone)."""
    if not no_cache and path is not None and path.exists() and not path.is_dir():
        from maslow.errors import FormatError

        raise FormatError("--cache-dir must be a folder (or not exist yet), got a file", path=path)
    return path


def select_command(
    dataset: DatasetArg = None,
    fmt: FromOpt = None,
    budget: Annotated[int, typer.Option("--budget", "-n", help="How many images to pick.")] = 100,
    strategy: Annotated[str, typer.Option(
        "--strategy", "-s", help="auto, typicality, kcenter, kmeans, random or stratified.")] = "auto",
    embedder: EmbedderOpt = "auto",
    seed: Annotated[int, typer.Option("--seed", help="Seed of the random parts (k-means seeding, "
                                                 "random and stratified orders).")] = 0,
    no_gate: Annotated[bool, typer.Option("--no-gate", help="Do not hold back glitch/blank/outlier images.")] = False,
    cache_dir: CacheOpt = None,
    no_cache: NoCacheOpt = False,
    device: DeviceOpt = None,
    images_root: ImagesRootOpt = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Write the image paths, one a line.")] = None,
    top: Annotated[int, typer.Option("--top", min=0, help="Rows to show in the table (--json lists every pick).")]
    = 20,
    as_json: JsonOpt = False,
    output_old: OutputOpt = None,
) -> None:
    """Order images most informative first (diverse and representative; frames spread over the videos). Picks are
    ranked from 1, in the table and in --json."""
    from maslow.core.atomic import atomic_path
    from maslow.diversity.select import select

    output, _ = either(out, output_old, ("--out", "--output"))
    ds = load_dataset(dataset, fmt, images_root=images_root, folders=True)
    if not ds.n_images:
        no_images(dataset, fmt)  # exit 0: nothing to pick is a result (an --out file is still written, empty)
    emb = _embedder(ds, embedder, device)
    # a bar per step, named as it starts (checking image quality, embedding, finding outliers, selecting): one
    # "embedding" bar stood still for the gate's decoding and the greedy picks
    with step_bars(enabled=not as_json) as (step, progress):
        sel = select(ds, budget=budget, strategy=strategy, rng=seed, quality_gate=not no_gate,  # type: ignore[arg-type]
                     embedder=emb, cache_dir=_cache(cache_dir, no_cache), use_cache=not no_cache, progress=progress,
                     step=step)
    if output is not None:
        with atomic_path(output) as tmp:
            tmp.write_text("".join(f"{ds.images.path[i]}\n" for i in sel.order))
    if as_json:
        print_json(sel)
        return
    if not ds.n_images:
        if output is not None:
            console.print(f"Wrote 0 paths to {lit(output)}")
        return
    say_embedder(sel.embedder)
    seq = ds.images.extra.get("sequence")
    # the sequence column only when there are sequences: an empty one took the width the image paths need
    # ranks as people count them, from 1 (as qa's ISSUES.json and the picks' ``rank`` in --json)
    rows = [(r + 1, str(ds.images.path[i]), *([] if seq is None else [str(seq[i])]),
             "-" if np.isnan(s) else float(s), str(why))
            for r, (i, s, why) in enumerate(zip(sel.order[:top], sel.score[:top], sel.reason[:top], strict=True))]
    columns = ["rank", "image", *([] if seq is None else ["sequence"]), "score", "reason"]
    # the summary on a line of its own (as outliers prints it): as the table's title it wrapped into the width of
    # the rank column, one or two words a line, in an 80-column terminal
    console.print(f"First {len(rows)} of {len(sel)} pick{'s' if len(sel) != 1 else ''} ({lit(sel.strategy)}) among "
                  f"{sel.n_images} image{'s' if sel.n_images != 1 else ''}:")
    console.print(fold_columns(table("Picks, most informative first", columns, rows), "image"))
    if seq is not None:
        from maslow.diversity.select import sequence_keys

        keys = sequence_keys(seq)  # an image without a sequence is one of its own
        n_seq = len(set(keys.tolist()))
        gated = set(sel.gated.tolist())
        n_ok = len({k for i, k in enumerate(keys.tolist()) if i not in gated})
        n_first = min(n_ok, len(sel))  # the picks made: a budget under the sequences makes fewer
        first = {keys[i] for i in sel.order[:n_first]}
        picks = "The first pick covers" if n_first == 1 else f"The first {n_first} picks cover"
        console.print(f"{picks} {len(first)} of the {n_ok} sequences with an image that passes the quality gate ({n_seq} "
                      "sequences in all; an image without one counts as its own).")
    if len(sel.gated):
        console.print(f"Held back by the quality gate: {len(sel.gated)} images, e.g. "
                      f"{lit(ds.images.path[sel.gated[0]])} ({lit(sel.gate_reason[0])})")
    if output is not None:
        console.print(f"Wrote {len(sel)} paths to {lit(output)}")


def embed_command(
    dataset: DatasetArg = None,
    fmt: FromOpt = None,
    embedder: EmbedderOpt = "auto",
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Where to write the (m, d) float32 .npy "
                                             "(default: features.npy).")] = None,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, help="Images per forward pass.")] = 64,
    cache_dir: CacheOpt = None,
    no_cache: NoCacheOpt = False,
    device: DeviceOpt = None,
    images_root: ImagesRootOpt = None,
    as_json: JsonOpt = False,
    output_old: OutputOpt = None,
) -> None:
    """Embed every image (row i = image row i) into a .npy file, using the on-disk cache."""
    import time

    from maslow.core.atomic import atomic_path
    from maslow.embed import describe_embedder, embed_dataset, embedder_for

    given, _ = either(out, output_old, ("--out", "--output"))
    output: Path = Path("features.npy") if given is None else given
    ds = load_dataset(dataset, fmt, images_root=images_root, folders=True)
    if not ds.n_images:
        no_images(dataset, fmt)  # exit 0, as select and outliers: the .npy is still written, (0, dim)
    # auto: light for tiny images, as select and outliers; a --device this machine lacks is refused naming it
    emb = embedder_for(ds, embedder, device=device, where="--device")
    t0 = time.perf_counter()
    with progress_bar(f"embedding ({emb.name})", enabled=not as_json) as progress:
        feats = embed_dataset(ds, embedder=emb, cache_dir=_cache(cache_dir, no_cache), use_cache=not no_cache,
                              batch_size=batch_size, progress=progress)
    seconds = time.perf_counter() - t0
    with atomic_path(output) as tmp, open(tmp, "wb") as f:
        np.save(f, feats)
    used = describe_embedder(emb)
    info = {"embedder": emb.name, "weights": used["weights"], "device": used["device"], "n_images": int(feats.shape[0]),
            "dim": int(feats.shape[1]), "output": str(output), "seconds": round(seconds, 3)}
    if as_json:
        print_json(info)
    else:
        say_embedder(used)
        console.print(f"Embedded {info['n_images']} images with {lit(emb.name)} ({info['dim']}-d) in {seconds:.1f} s "
                      f"-> {lit(output)}")


#: dataset_outliers' parameters as the flags that give them (its messages name the parameter)
_OUTLIER_FLAGS = {"outliers: k": "outliers: --k", "outliers: n_mads": "outliers: --mads",
                  "outliers: min_ratio": "outliers: --min-ratio"}


def outliers_command(
    dataset: DatasetArg = None,
    fmt: FromOpt = None,
    embedder: EmbedderOpt = "auto",
    k: Annotated[int, typer.Option("--k", help="Neighbours averaged per image.")] = 10,
    n_mads: Annotated[float, typer.Option("--mads", help="Threshold: median + this many scaled MADs.")] = 3.0,
    min_ratio: Annotated[float, typer.Option(
        "--min-ratio", help="An outlier's score must also be this many times its 10 nearest neighbours' (local "
        "density, as LOF), so a sparse but genuine group is not listed whole; 0: the threshold alone.")] = 3.0,
    top: Annotated[int, typer.Option("--top", min=0, help="How many outliers to list (and --json lists).")] = 20,
    cache_dir: CacheOpt = None,
    no_cache: NoCacheOpt = False,
    device: DeviceOpt = None,
    images_root: ImagesRootOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Images far from the rest in embedding space (mean distance to the k nearest neighbours, and several times
    their neighbours'), ranked; unreadable images are listed first."""
    from maslow.diversity.outliers import dataset_outliers

    ds = load_dataset(dataset, fmt, images_root=images_root, folders=True)
    if not ds.n_images:
        no_images(dataset, fmt)
        if not as_json:
            return
    emb = _embedder(ds, embedder, device)
    with step_bars(enabled=not as_json) as (step, progress), flags_named(_OUTLIER_FLAGS):
        res = dataset_outliers(ds, embedder=emb, k=k, n_mads=n_mads, min_ratio=min_ratio,
                               cache_dir=_cache(cache_dir, no_cache), use_cache=not no_cache, progress=progress,
                               step=step)
    if as_json:
        print_json(res.to_dict(limit=top))
        return
    say_embedder(res.embedder)
    rule = f"threshold {res.threshold:.3g}, k={res.k}" + (f", ratio >= {res.min_ratio:g}" if res.min_ratio else "")
    if not res.n_outliers:
        console.print(f"No outliers among {ds.n_images} image{'s' if ds.n_images != 1 else ''} ({rule}).")
    else:
        # the summary on a line of its own: as the table's title it wrapped into the width of the table's columns
        console.print(f"{res.n_outliers} outlier{'s' if res.n_outliers != 1 else ''} of {ds.n_images} images ({rule})"
                      + (f", {len(res.unreadable)} of them unreadable" if len(res.unreadable) else "") + ":")
        # ranked from 1 with the image's path under "image", as select, check and qa show them (--json has the rows)
        shown = res.top(top)
        bad = set(res.unreadable.tolist())
        rows = [(r + 1, str(ds.images.path[i]), *(("-", "-", res.reason(int(i))) if i in bad else
                                                  (float(res.score[i]), float(res.ratio[i]), "")))
                for r, i in enumerate(shown)]
        cols = ["rank", "image", "score", "x neighb."]
        if any(i in bad for i in shown):
            cols.append("reason")
        else:
            rows = [row[:4] for row in rows]
        console.print(fold_columns(table("Outliers, most unusual first", cols, rows), "image", "reason"))
        if res.n_outliers > len(shown):
            console.print(f"({res.n_outliers - len(shown)} more: --top {res.n_outliers} lists them all)")
    if res.n_kept_by_ratio:
        n = res.n_kept_by_ratio
        console.print(f"{n} more image{'s are' if n > 1 else ' is'} above the threshold but under {res.min_ratio:g} x "
                      "the neighbours' score: part of a sparser group, not isolated (--min-ratio 0 lists them).")


def _embedder(ds: Any, name: str, device: str | None) -> Any:
    """What select and outliers are given to embed with: the embedder ``--embedder`` names for ``ds`` on
    ``--device`` (a device this machine lacks is refused naming ``--device``, before any weights are loaded); without
    ``--device`` (or images) the name, so the analysis checks its own options before it loads any weights."""
    if device is None or not ds.n_images:
        return name
    from maslow.embed import embedder_for

    return embedder_for(ds, name, device=device, where="--device")


def say_embedder(used: dict[str, str] | None) -> None:
    """The embedder that ran (``maslow.embed.describe_embedder``), as one line on stderr: embed, select and outliers
    say it the same way (--json has it instead: ``embedder``)."""
    if used is None:
        return
    weights = "no weights" if used["weights"] == "none" else f"weights {used['weights']}"
    err_console.print(f"embedder: {used['name']} ({weights}, on {used['device']})", markup=False, highlight=False,
                      soft_wrap=True)


def register(app: typer.Typer) -> None:
    app.command("select")(select_command)
    app.command("embed")(embed_command)
    app.command("outliers")(outliers_command)
