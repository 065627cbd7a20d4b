"""Diverse selection and ordering: which images to label (or look at) first.

Glossary:
    order: image rows, most informative first. Every prefix is meant to be a good selection on its own, so a team
        can label the first 100 today and the next 400 next week.
    typicality: ``1 / mean distance to the 20 nearest neighbours`` in embedding space (high in dense regions).
    typicality rounds (``typicality``, TypiClust, Hacohen et al. 2022): cluster the images into as many clusters
        as picks wanted so far (k-means), then take the most typical image of each largest cluster that holds no
        pick yet; the number of clusters grows geometrically, so every prefix covers the densest modes first.
    k-center greedy (``kcenter``, farthest-point sampling): each pick is the image farthest from all earlier
        picks. Good coverage at large budgets, but its first picks are outliers, so it loses to random at small
        budgets.
    k-means medoids (``kmeans``): k-means with ``budget`` clusters, the image nearest each centre, largest
        clusters first. Strong at one budget, but its prefixes are not chosen to be good.
    auto (the default, ``facility``): greedy facility location, i.e. each pick maximises how much of the data is
        newly represented, ``sum_i w_i max_{j picked} exp(-d_ij^2 / 2 sigma^2)`` (sigma: 1.5 x the median mean
        20-NN distance), in two phases. Low budgets (the first ``m // 32`` picks, at least 32 images per pick):
        each image is weighted by its mean 20-NN distance (``w_i``), so sparse regions count as much as dense
        ones and the first picks spread over every mode, like k-means centres (plain facility location crowds
        them into the densest modes). Higher budgets: images weigh the same, and each candidate is scored from
        the mean of itself and its 10 nearest neighbours (weighted by ``exp(-d^2 / 4 sigma^2)``), so prototypical
        images win over noisy ones while the picks fill the gaps. Greedy keeps a (1 - 1/e) guarantee at every
        prefix of each phase. Lazy evaluation in batches; above ``max_points`` images it runs on a random sample
        of that size, then k-center greedy.
    stratified: proportional to strata (given, else the image sequences, else the image's most frequent class),
        random within each stratum, interleaved so every prefix keeps the proportions.
    sequences: consecutive frames of a video are near-duplicates. With ``sequence`` ids (``images.extra
        ["sequence"]`` by default), the selected images are re-ordered round-robin over sequences (the i-th pick
        of a sequence comes after every sequence's (i-1)-th pick), so the first picks span the videos.
    quality gate: images whose outlier score (mean distance to the 3 nearest neighbours) exceeds a robust threshold
        and ``gate_ratio`` times their neighbours' scores (local density, so a sparser genuine group is not held
        back whole), and (for a Dataset) blank/uniform, very blurry or unreadable images, are moved behind every
        other image: glitch frames are never among the first picks (a whole short clip that is unlike the other
        videos is a scene, not a glitch: it is not held back).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from maslow.core.dataset import Dataset
from maslow.core.types import BoolArray, FloatArray, IntArray, Rng, as_generator, frozen, is_unset, obj_array
from maslow.diversity._neighbors import as_features, kmeans, knn, nearest, reduce_dims, sq_dists
from maslow.diversity.outliers import outlier_scores, outliers
from maslow.errors import MaslowError

Strategy = Literal["auto", "typicality", "kcenter", "kmeans", "random", "stratified"]
STRATEGIES: tuple[str, ...] = ("auto", "typicality", "kcenter", "kmeans", "random", "stratified")


@dataclass(frozen=True, eq=False)
class Selection:
    """An ordered selection of images.

    Attributes:
        order: (b,) int64 image rows, most informative first.
        score: (b,) float64 per pick: typicality for typical picks, distance to the nearest earlier pick for
            coverage picks, nan for random/stratified picks.
        reason: (b,) str per pick, e.g. ``"typical: cluster of 41 images (12 clusters)"``.
        strategy: the strategy that ran (``auto`` resolved to what it did: ``"facility"`` or ``"facility+kcenter"``).
        gated: (g,) int64 rows the quality gate moved to the back (they appear in ``order`` only after every
            other image).
        gate_reason: (g,) str, why each gated row was held back.
        n_images: images considered.
        paths: (m,) image paths when selecting from a Dataset, else None.
        embedder: the embedder that embedded the images (``maslow.embed.describe_embedder``: name, weights file,
            device); None when the features were given.
    """

    order: IntArray
    score: FloatArray
    reason: np.ndarray
    strategy: str
    gated: IntArray
    gate_reason: np.ndarray
    n_images: int
    paths: np.ndarray | None = None
    embedder: dict[str, str] | None = None

    def __len__(self) -> int:
        return len(self.order)

    def to_dict(self) -> dict[str, Any]:
        return {
            "strategy": self.strategy, "n_images": self.n_images, "n_selected": len(self.order),
            "embedder": self.embedder,
            # ranked from 1, as the table and qa's ISSUES.json count them (``order[rank - 1]`` is the image)
            "picks": [{"rank": r, "image": int(i), "score": float(s), "reason": str(why),
                       **({"path": str(self.paths[i])} if self.paths is not None else {})}
                      for r, (i, s, why) in enumerate(zip(self.order, self.score, self.reason, strict=True), 1)],
            "gated": [{"image": int(i), "reason": str(why),
                       **({"path": str(self.paths[i])} if self.paths is not None else {})}
                      for i, why in zip(self.gated, self.gate_reason, strict=True)],
        }

    def to_pandas(self) -> Any:
        import pandas as pd

        return pd.DataFrame({"image": self.order, "score": self.score, "reason": self.reason,
                             **({"path": self.paths[self.order]} if self.paths is not None else {})})


def select(
    data: Dataset | np.ndarray,
    *,
    budget: int,
    strategy: Strategy = "auto",
    rng: Rng = None,
    features: np.ndarray | None = None,
    sequence: np.ndarray | None = None,
    strata: np.ndarray | None = None,
    quality_gate: bool = True,
    gate_mads: float = 4.0,
    gate_ratio: float = 3.0,
    max_points: int = 10_000,
    embedder: str | Any = "auto",
    cache_dir: str | Path | None = None,
    use_cache: bool = True,
    progress: Callable[[int, int], None] | None = None,
    step: Callable[[str], None] | None = None,
) -> Selection:
    """Order images so that the first ``budget`` are the most informative to label first.

    Args:
        data: a Dataset (its images are embedded with ``embedder``, unless ``features`` is given) or an
            (m, d) feature array, one row per image.
        budget: how many images to return (capped at m).
        strategy: ``auto`` (greedy facility location, spread first; see the module glossary), ``typicality``,
            ``kcenter``, ``kmeans`` (medoids), ``random`` or ``stratified``.
        rng: seed or generator (k-means seeding, random and stratified orders).
        features: (m, d) embeddings of a Dataset's images, to skip embedding.
        sequence: (m,) sequence (video) id per image; default ``images.extra["sequence"]`` of a Dataset.
        strata: (m,) stratum per image for ``stratified``.
        quality_gate: hold back outliers (score above ``median + gate_mads`` MADs, and ``gate_ratio`` times the
            median score of their 10 nearest neighbours) and, for a Dataset, blank/uniform, very blurry and
            unreadable images, behind every other image.
        gate_mads: threshold of the outlier gate, in scaled MADs.
        gate_ratio: an outlier's score must also be this many times the median score of its 10 nearest
            neighbours (local density, as LOF), so that a sparser but genuine group of more than about 5 images (a
            second camera, a rarer domain) is not held back as a whole; glitch frames score 5 to 15.
        max_points: ``auto`` works on a random sample of at most this many images (cost grows as its square).
        embedder: embedder name or object when ``data`` is a Dataset (see ``maslow.embed``).
        cache_dir: embedding cache folder (see ``maslow.embed.embed_dataset``).
        use_cache: read and write the embedding cache (False: embed every image, write nothing).
        progress: ``progress(done, total)`` callback within each step: the images checked by the quality gate,
            the images embedded (those not in the cache), the picks made.
        step: called with the name of each step as it starts (``"checking image quality"`` and ``"embedding"``
            for a Dataset, ``"finding outliers"`` with the gate, ``"selecting"``); ``progress`` then counts that
            step's work from 0 (finding outliers reports none).

    Returns:
        Selection with ``min(budget, m)`` image rows, most informative first.

    Raises:
        MaslowError: an unknown strategy, a budget below 1, or ``gate_mads``/``gate_ratio`` not a number >= 0.
        InvalidDatasetError: features are not a finite (m, d) array, or ``sequence`` has the wrong length.
        FormatError: an image can't be read with ``quality_gate=False`` (with the gate it is held back), or no
            image can be read.

    Example:
        >>> x = np.random.default_rng(0).normal(size=(200, 8))
        >>> sel = select(x, budget=10, rng=0)
        >>> len(sel), len(set(sel.order.tolist()))
        (10, 10)
    """
    if strategy not in STRATEGIES:
        raise MaslowError(f"select: strategy must be one of {', '.join(STRATEGIES)}, got {strategy!r}")
    if budget < 1:
        raise MaslowError(f"select: budget must be >= 1, got {budget}")
    for name, v in (("gate_mads", gate_mads), ("gate_ratio", gate_ratio)):
        if not v >= 0 or math.isinf(v):
            raise MaslowError(f"select: {name} must be a number >= 0, got {v}")
    gen = as_generator(rng)
    say = step if step is not None else _silent
    paths = None
    used: dict[str, str] | None = None
    gate_rows: dict[int, str] = {}
    if isinstance(data, Dataset):
        ds = data
        paths = frozen(ds.images.path)
        if quality_gate:
            from maslow.diversity._gate import image_quality_flags

            say("checking image quality")
            gate_rows.update(image_quality_flags(ds, progress=progress))
        if features is None:
            say("embedding")
            # images the gate could not read are not embedded (the embedder would stop at the first): they are held
            # back, as the gate promises
            features, used = _embed_readable(ds, {i: why for i, why in gate_rows.items() if why.startswith("unreadable")},
                                       embedder=embedder, cache_dir=cache_dir, use_cache=use_cache,
                                       progress=progress)
        if sequence is None and "sequence" in ds.images.extra:
            sequence = np.asarray(ds.images.extra["sequence"])
        if strata is None and strategy == "stratified" and sequence is None:
            strata = _majority_label(ds)
    else:
        features = data
    x = as_features(features, where="select")
    m = len(x)
    if sequence is not None and len(sequence) != m:
        from maslow.errors import InvalidDatasetError

        raise InvalidDatasetError(f"select: sequence must have one entry per image ({m}), got {len(sequence)}")
    if m == 0:  # nothing ran; auto is named as it resolves (what a script compares with)
        e = np.zeros(0, dtype=np.int64)
        return Selection(e, np.zeros(0), obj_array([]), "facility" if strategy == "auto" else strategy, e,
                         obj_array([]), 0, paths, used)
    budget = min(budget, m)
    gate_score = None
    if quality_gate and m > 2:
        # the outlier test of ``maslow outliers`` (one function): far from the bulk (a robust threshold) and far
        # compared with its 10 nearest neighbours' own scores (local density, as LOF). The global test alone held a
        # sparser group back whole (a second camera: 16 photos among 30 near-identical microscope slides, its
        # members as far from each other as from the rest); 10 neighbours, not 3, so that a few similar glitches
        # (up to about 5) still have mostly ordinary neighbours to be compared with.
        say("finding outliers")
        res = outliers(x, k=3, n_mads=gate_mads, min_ratio=gate_ratio)
        gate_score = res.score
        # a MAD of 0 (over half the images are exact copies, at distance 0) gives no scale to judge by:
        # the threshold would be 0 and every image that is not a copy would be held back
        if float(np.median(np.abs(res.score - np.median(res.score)))) > 0:
            from maslow.diversity._gate import whole_clips

            flagged = [int(i) for i in res.top() if int(i) not in gate_rows]
            scenes = set(whole_clips(flagged, None if sequence is None else sequence_keys(sequence)))
            gate_rows.update({i: f"outlier: {res.reason(i)}" for i in flagged if i not in scenes})
    gated = np.array(sorted(gate_rows), dtype=np.int64)
    ok = np.ones(m, dtype=bool)
    ok[gated] = False
    if not ok.any():  # everything gated: the gate can't order anything, ignore it
        ok[:] = True
    say("selecting")
    z = reduce_dims(x)
    strat_name, order, score, reason = _run(strategy, z, ok, budget, gen, sequence, strata, max_points,
                                            progress=progress)
    if len(order) < budget:  # the gated rows come last, least unusual first
        rest = gated[~np.isin(gated, order)]
        if len(rest):
            rest_score = gate_score if gate_score is not None else outlier_scores(x, k=min(3, m - 1))
            rest = rest[np.argsort(rest_score[rest], kind="stable")][: budget - len(order)]
            order = np.concatenate([order, rest])
            score = np.concatenate([score, np.full(len(rest), np.nan)])
            reason = [*reason, *(f"held back by the quality gate ({gate_rows[int(i)]})" for i in rest)]
    if sequence is not None and strategy != "random":
        seq = sequence_keys(sequence)
        have = set(seq[order].tolist())
        extra_rows = []
        for s_ in dict.fromkeys(seq[ok].tolist()):  # sequences without a pick: add their medoid frame
            if s_ not in have:
                members = np.flatnonzero((seq == s_) & ok)
                d = sq_dists(z[members], z[members].mean(axis=0, keepdims=True))[:, 0]
                extra_rows.append(int(members[np.argmin(d)]))
        if extra_rows:
            order = np.concatenate([order, extra_rows]).astype(np.int64)
            score = np.concatenate([score, np.full(len(extra_rows), np.nan)])
            reason = [*reason, *["sequence: medoid frame of a sequence without a pick"] * len(extra_rows)]
        perm = _round_robin(seq[order], keep_last=~ok[order])[:budget]
        order, score, reason = order[perm], score[perm], [reason[i] for i in perm]
    return Selection(frozen(np.asarray(order, dtype=np.int64)), frozen(np.asarray(score, dtype=np.float64)),
                     frozen(obj_array(list(reason))), strat_name, frozen(gated),
                     frozen(obj_array([gate_rows[int(i)] for i in gated])), m, paths, used)


def _embed_readable(ds: Dataset, unreadable: dict[int, str], *, embedder: str | Any, cache_dir: str | Path | None,
                    use_cache: bool,
                    progress: Callable[[int, int], None] | None) -> tuple[np.ndarray, dict[str, str]]:
    """(m, d) embeddings of ``ds``'s images (``maslow.embed.embed_readable``) and the embedder that made them
    (``describe_embedder``); the ``unreadable`` rows (held back by the gate) get the mean of the others, a place that
    neither attracts nor repels picks."""
    from maslow.embed import describe_embedder, embed_readable, embedder_for
    from maslow.errors import FormatError
    from maslow.io.images import image_path

    if unreadable and len(unreadable) == ds.n_images:
        first = min(unreadable)
        raise FormatError(f"select: none of the {ds.n_images} images can be read ({unreadable[first]})",
                          path=image_path(ds, first))
    emb = embedder_for(ds, embedder)
    f, rows, _ = embed_readable(ds, unreadable=unreadable, embedder=emb, cache_dir=cache_dir,
                                use_cache=use_cache, progress=progress)
    if not unreadable:
        return f, describe_embedder(emb)
    out = np.empty((ds.n_images, f.shape[1]), dtype=np.float32)
    out[rows] = f
    out[sorted(unreadable)] = f.mean(axis=0)
    return out, describe_embedder(emb)


def _silent(*_: Any) -> None:
    """A progress or step callback that shows nothing."""


def _run(strategy: str, z: np.ndarray, ok: BoolArray, budget: int, gen: np.random.Generator,
         sequence: np.ndarray | None, strata: np.ndarray | None, max_points: int,
         progress: Callable[[int, int], None] | None = None) -> tuple[str, IntArray, FloatArray, list[str]]:
    cand = np.flatnonzero(ok)
    b = min(budget, len(cand))
    zc = z[cand]
    tick = _Picks(progress, b)
    name, pick, score, why = _strategy(strategy, zc, cand, b, gen, sequence, strata, max_points, tick)
    tick(len(pick))
    return name, cand[pick], score, why


class _Picks:
    """``progress(picks made, budget)``, throttled to about 100 calls (a call per pick of 10,000 would cost more
    than the picks); with ``progress=None`` nothing is called."""

    def __init__(self, progress: Callable[[int, int], None] | None, total: int) -> None:
        self.progress, self.total, self.due, self.last = progress, total, 0, -1
        self(0)

    def __call__(self, done: int) -> None:
        done = min(done, self.total)
        if self.progress is not None and done != self.last and (done >= self.due or done == self.total):
            self.progress(done, self.total)
            self.last, self.due = done, done + max(1, self.total // 100)


def _strategy(strategy: str, zc: np.ndarray, cand: IntArray, b: int, gen: np.random.Generator,
              sequence: np.ndarray | None, strata: np.ndarray | None, max_points: int,
              tick: _Picks) -> tuple[str, IntArray, FloatArray, list[str]]:
    """(name, picks as rows of ``zc``, score, reason) of one strategy over the candidates ``cand``."""
    if strategy == "random":
        pick = gen.permutation(len(zc))[:b]
        return "random", pick, np.full(b, np.nan), ["random"] * b
    if strategy == "stratified":
        groups = strata if strata is not None else sequence
        if groups is None:
            raise MaslowError("select: strategy 'stratified' needs strata (or sequences, or class labels)")
        pick = _stratified(np.asarray(groups)[cand], b, gen)
        g = np.asarray(groups)[cand]
        return "stratified", pick, np.full(b, np.nan), [f"stratum {g[i]}" for i in pick]
    if strategy == "kcenter":
        start = int(np.argmin(sq_dists(zc, zc.mean(axis=0, keepdims=True))[:, 0]))
        pick, dist = _kcenter(zc, [start], b, tick=tick)
        return "kcenter", pick, dist, ["start: nearest the mean", *["coverage: farthest from earlier picks"] * (b - 1)]
    if strategy == "kmeans":
        labels, centres = kmeans(zc, b, rng=gen)
        sizes = np.bincount(labels, minlength=len(centres))
        pick_l, why_l = [], []
        for c in np.argsort(-sizes, kind="stable"):
            members = np.flatnonzero(labels == c)
            if len(members):
                d = sq_dists(zc[members], centres[c : c + 1])[:, 0]
                pick_l.append(int(members[np.argmin(d)]))
                why_l.append(f"medoid of a cluster of {len(members)} images")
        pick = np.array(pick_l[:b], dtype=np.int64)
        score = np.full(len(pick), np.nan)
        if len(pick) < b:  # empty clusters (duplicate images): fill the budget with the farthest images
            more, dist = _kcenter(zc, pick, b, tick=tick)
            score = np.concatenate([score, dist[len(pick):]])
            why_l = why_l[:b] + ["coverage: farthest from earlier picks"] * (b - len(pick))
            pick = more
        return "kmeans", pick, score, why_l[:b]
    if strategy == "typicality":
        pick, score, why = _typical_rounds(zc, b, gen, tick=tick)
        return "typicality", pick, score, why
    # auto: greedy facility location (representativeness), then k-center past the candidate pool
    pick, score, why = _facility_location(zc, b, gen, max_points=max_points, tick=tick)
    name = "facility"
    if len(pick) < b:
        more, dist = _kcenter(zc, pick, b, tick=tick)
        score = np.concatenate([score, dist[len(pick):]])
        why += ["coverage: farthest from earlier picks"] * (b - len(pick))
        pick, name = more, "facility+kcenter"
    return name, pick, score, why


def _typicality(z: np.ndarray, k: int = 20) -> FloatArray:
    dist, _ = knn(z, k=k)
    if not dist.shape[1]:
        return np.ones(len(z))
    return np.asarray(1.0 / (dist.mean(axis=1) + 1e-12), dtype=np.float64)


def _typical_rounds(z: np.ndarray, b: int, gen: np.random.Generator, growth: float = 1.5,
                    tick: Callable[[int], None] = _silent) -> tuple[IntArray, FloatArray, list[str]]:
    """Typicality rounds: k-means around the earlier picks (kept as fixed centres), then the most typical image
    (within its cluster) of each new cluster, largest clusters first; the number of clusters grows geometrically."""
    picked: list[int] = []
    score: list[float] = []
    why: list[str] = []
    while len(picked) < b:
        k = min(b, max(len(picked) + 1, math.ceil(len(picked) * growth)))
        f = len(picked)
        labels, centres = kmeans(z, k, rng=gen, n_iter=10, fixed=z[picked] if picked else None)
        sizes = np.bincount(labels, minlength=len(centres))
        for c in np.argsort(-sizes, kind="stable"):
            if c < f or sizes[c] == 0 or len(picked) >= k:
                continue
            members = np.flatnonzero(labels == c)
            local = _typicality(z[members])
            i = int(members[np.argmax(local)])
            picked.append(i)
            score.append(float(local.max()))
            why.append(f"typical: cluster of {sizes[c]} images ({k} clusters)")
        if len(picked) < k:  # clusters emptied: add the farthest points
            more, dist = _kcenter(z, picked, k)
            for i, d in zip(more[len(picked):], dist[len(picked):], strict=True):
                picked.append(int(i))
                score.append(float(d))
                why.append("coverage: farthest from earlier picks")
        tick(len(picked))
    return np.array(picked, dtype=np.int64), np.array(score), why


def _facility_location(z: np.ndarray, b: int, gen: np.random.Generator, *, max_points: int = 10_000,
                       chunk: int = 1024, batch: int = 64, per_pick: int = 32, smooth_k: int = 10,
                       tick: Callable[[int], None] = _silent) -> tuple[IntArray, FloatArray, list[str]]:
    """Greedy facility location, ``sum_i w_i max_j s(i, j)`` with ``s = exp(-d^2 / (2 sigma^2))`` and sigma 1.5
    times the median mean-20-NN distance; greedy keeps a (1 - 1/e) guarantee at every prefix.

    Two phases. The first ``m // per_pick`` picks (low budgets: at least ``per_pick`` images per pick) weight
    each image by its mean 20-NN distance, so sparse regions count as much as dense ones and the first picks
    spread over every mode. The later picks weight images equally and place each candidate facility at the
    mean of its image and ``smooth_k`` nearest neighbours (weighted by ``exp(-d^2 / (4 sigma^2))``, so a tiny
    mode's far neighbours barely move it), so prototypical images win over noisy ones. Above
    ``max_points`` images, candidates and the images they must represent are random samples of that size."""
    m = len(z)
    pool = np.sort(gen.choice(m, max_points, replace=False)) if m > max_points else np.arange(m)
    zp = z[pool]
    kd, nn = knn(zp, k=20)
    spread = kd.mean(axis=1) if kd.shape[1] else np.ones(len(zp))
    sigma = 1.5 * float(np.median(spread)) if kd.shape[1] else 1.0
    if not sigma > 0:  # most images have 20+ exact copies: the scale of the distinct ones
        sigma = 1.5 * float(np.median(spread[spread > 0])) if (spread > 0).any() else 1.0
    inv = 1.0 / (2.0 * max(sigma, 1e-12) ** 2)
    mean_spread = float(spread.mean())
    weight = np.maximum(spread / mean_spread, 1e-3) if mean_spread > 0 else np.ones(len(zp))
    picked: list[int] = []
    score: list[float] = []
    why: list[str] = []
    b = min(b, len(zp))
    _lazy_greedy(zp, zp, inv, weight, picked, score, why, min(b, len(zp) // per_pick), "spread",
                 chunk=chunk, batch=batch, tick=tick)
    nb = nn[:, :smooth_k]
    wk = np.exp(-kd[:, :smooth_k] ** 2 * (inv / 2))  # neighbours far away (a tiny mode's) barely move the mean
    mu = ((zp + (zp[nb] * wk[:, :, None]).sum(axis=1)) / (1.0 + wk.sum(axis=1))[:, None]).astype(zp.dtype)
    _lazy_greedy(zp, mu, inv, None, picked, score, why, b, "representative", chunk=chunk, batch=batch, tick=tick)
    return pool[np.array(picked, dtype=np.int64)], np.array(score), why


def _lazy_greedy(zp: np.ndarray, loc: np.ndarray, inv: float, weight: FloatArray | None, picked: list[int],
                 score: list[float], why: list[str], b: int, label: str, *, chunk: int, batch: int,
                 tick: Callable[[int], None] = _silent) -> None:
    """Lazy greedy facility location continued from ``picked`` up to ``b`` picks (lists appended in place).

    Candidate j sits at ``loc[j]`` and represents image i by ``weight_i exp(-|zp_i - loc_j|^2 inv)``. Batches of
    stale bounds are re-scored together, and the best is taken if it still beats every other bound (gains only
    shrink as picks are added: submodularity)."""
    import heapq

    n = len(zp)
    if len(picked) >= b:
        return
    norms = (zp * zp).sum(axis=1)
    w = np.ones(n) if weight is None else weight
    total = float(w.sum())

    def cols_of(rows: np.ndarray) -> np.ndarray:
        return np.asarray(np.exp(-sq_dists(loc[rows], zp, norms) * inv) * w[None, :])

    cur = np.zeros(n)
    for j in picked:
        np.maximum(cur, cols_of(np.array([j]))[0], out=cur)
    gains = np.empty(n)
    for s in range(0, n, chunk):  # initial gains
        gains[s : s + chunk] = np.maximum(cols_of(np.arange(s, min(n, s + chunk))) - cur[None, :], 0.0).sum(axis=1)
    taken = set(picked)
    heap = [(-float(g), j) for j, g in enumerate(gains) if j not in taken]
    heapq.heapify(heap)
    while len(picked) < b and heap:
        top = [heapq.heappop(heap) for _ in range(min(batch, len(heap)))]
        idx = np.array([j for _, j in top], dtype=np.int64)
        cols = cols_of(idx)
        g = np.maximum(cols - cur[None, :], 0.0).sum(axis=1)
        best = int(np.argmax(g))
        accepted = not heap or g[best] >= -heap[0][0] - 1e-9
        if accepted:
            picked.append(int(idx[best]))
            score.append(float(g[best]) / total)
            why.append(f"{label}: +{g[best] / total:.2%} of the images covered")
            np.maximum(cur, cols[best], out=cur)
            tick(len(picked))
        for r, j in enumerate(idx):
            if not (accepted and r == best):
                heapq.heappush(heap, (-float(g[r]), int(j)))


def _kcenter(z: np.ndarray, start: list[int] | IntArray, b: int,
             tick: Callable[[int], None] = _silent) -> tuple[IntArray, FloatArray]:
    """Greedy farthest-point sampling continued from ``start``; (picks, distance of each pick to earlier ones)."""
    picks = [int(i) for i in start]
    dist_out = [np.nan] * len(picks)
    if not picks:
        return np.zeros(0, dtype=np.int64), np.zeros(0)
    _, d2 = nearest(z, z[picks])
    d2[picks] = -1.0  # never picked twice (a copy of a pick is at distance 0, above -1)
    while len(picks) < b:
        i = int(np.argmax(d2))
        if d2[i] < 0:  # every image picked
            break
        picks.append(i)
        dist_out.append(float(np.sqrt(d2[i])))
        np.minimum(d2, sq_dists(z, z[i : i + 1])[:, 0], out=d2)
        d2[i] = -1.0
        tick(len(picks))
    return np.array(picks, dtype=np.int64), np.array(dist_out)


def _stratified(groups: np.ndarray, b: int, gen: np.random.Generator) -> IntArray:
    """Random within each stratum; interleaved by fractional rank so every prefix is proportional."""
    keys = np.array([str(g) for g in groups], dtype=object)
    uniq, inv = np.unique(keys, return_inverse=True)
    pos = np.empty(len(keys))
    for s in range(len(uniq)):
        members = np.flatnonzero(inv == s)
        pos[gen.permutation(members)] = (np.arange(len(members)) + gen.random()) / len(members)
    return np.argsort(pos, kind="stable")[:b].astype(np.int64)


def _round_robin(seq: np.ndarray, keep_last: np.ndarray) -> IntArray:
    """Stable order by (held back, how many earlier picks share the sequence)."""
    seen: dict[str, int] = {}
    rank = np.empty(len(seq), dtype=np.int64)
    for j, s in enumerate(seq):
        key = str(s)
        rank[j] = seen.get(key, 0)
        seen[key] = rank[j] + 1
    return np.lexsort((np.arange(len(seq)), rank, keep_last.astype(np.int64))).astype(np.int64)


def _majority_label(ds: Dataset) -> np.ndarray:
    lab = np.full(ds.n_images, -1, dtype=np.int64)
    a = ds.annotations
    if len(a):
        counts = np.zeros((ds.n_images, len(ds.schema.names)), dtype=np.int64)
        np.add.at(counts, (a.image, a.label), 1)
        has = counts.sum(axis=1) > 0
        lab[has] = counts[has].argmax(axis=1)
    names = np.array([*ds.schema.names, "(no label)"], dtype=object)
    return names[lab]


def sequence_keys(sequence: np.ndarray | Sequence[Any]) -> np.ndarray:
    """(m,) str key per image: its sequence id as text, and for an image without one (None, NaN, "") a key of its
    own, so that stills are not taken for the frames of one video (as ``core.split`` makes them units of their own).
    """
    return np.array([f"\0still {i}" if is_unset(v) or v == "" else str(v) for i, v in enumerate(sequence)],
                    dtype=object)


def folder_dataset(folder: str | Path) -> Dataset:
    """An unlabelled Dataset of every image under ``folder`` (sorted paths, sizes from the headers), linked
    folders and files followed, each real folder once (``maslow.io.images.find_images``: a folder that can't be
    listed, or a broken link, is said in a MaslowWarning; a broken link named like an image is kept, unreadable).

    Images in sub-folders get ``images.extra["sequence"]`` = their folder (a video's frames usually share one)
    and ``frame`` = their position in it.

    Raises:
        FormatError: ``folder`` is not a folder.
    """
    from maslow.core.schema import LabelSchema
    from maslow.core.tables import Annotations, Images
    from maslow.errors import FormatError
    from maslow.io.images import find_images, image_info

    root = Path(folder)
    if not root.is_dir():
        raise FormatError("must be a folder of images", path=root)
    files = find_images(root)
    rel = [p.relative_to(root).as_posix() for p in files]
    sizes = []
    for p in files:
        try:
            info = image_info(p)
            sizes.append((info.width, info.height))
        except FormatError:
            sizes.append((0, 0))  # unreadable: the selection's quality gate holds it back
    seq = [r.rsplit("/", 1)[0] if "/" in r else "." for r in rel]
    frame = np.zeros(len(rel), dtype=np.int64)
    counter: dict[str, int] = {}
    for i, s in enumerate(seq):
        frame[i] = counter.get(s, 0)
        counter[s] = int(frame[i]) + 1
    extra = {"sequence": obj_array(seq), "frame": frame} if len(counter) > 1 else {}
    wh = np.array(sizes, dtype=np.int64).reshape(-1, 2)
    return Dataset(LabelSchema.from_names([], task="classification"),
                   Images(path=obj_array(rel), width=wh[:, 0], height=wh[:, 1], extra=extra),
                   Annotations.empty(), root=root)

