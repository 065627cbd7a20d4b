#!/usr/bin/env bash
# Demo step: out-of-fold predictions and prediction with the embed-logreg model (light embedder: no torch), on a
# tiny generated classification set (coloured squares; frames of a clip share a sequence). Runs alone too:
# DEMO_OUT=demo-out bash scripts/demo_models.sh. Writes under $OUT/models/.
set -euo pipefail
OUT=${DEMO_OUT:-demo-out}
D="$OUT/models"
step() { printf '\n\033[1;34m== %s\033[0m\n' "$*"; }
rm -rf "$D"
mkdir -p "$D"

step "M1. A tiny classification dataset: 60 images of a coloured square (the class is its colour), clips of 2 frames"
python - "$D" <<'PY'
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from maslow import Annotations, Dataset, Images, LabelSchema, io

d = Path(sys.argv[1])
(d / "data" / "images").mkdir(parents=True)
rng = np.random.default_rng(0)
colours = [(220, 40, 40), (40, 180, 60), (40, 80, 220)]
n = 60
labels = rng.integers(0, 3, n)
for i in range(n):
    px = rng.integers(90, 160, size=(48, 48, 3)).astype(np.uint8)
    s = int(rng.integers(10, 20))
    x, y = (int(v) for v in rng.integers(0, 48 - s, 2))
    px[y:y + s, x:x + s] = colours[labels[i]]
    Image.fromarray(px).save(d / "data" / "images" / f"sq_{i:03d}.png")
ds = Dataset(LabelSchema.from_names(["red", "green", "blue"], task="classification"),
             Images(path=[f"images/sq_{i:03d}.png" for i in range(n)], width=[48] * n, height=[48] * n,
                    extra={"sequence": [f"clip{i // 2}" for i in range(n)]}),
             Annotations(image=np.arange(n), label=labels), root=d / "data")
io.write(ds, d / "data" / "squares.parquet", "parquet")
(d / "embed-logreg.yaml").write_text(
    "data: data/squares.parquet\nformat: parquet\nmodel: embed-logreg\nbackbone: light\nseed: 0\n"
    f"params:\n  C: 1.0\n  cache_dir: {(d / 'cache').resolve()}\n")
print(f"{n} images, classes red/green/blue, config {d / 'embed-logreg.yaml'}")
PY

step "M2. Out-of-fold predictions (5 folds, clips kept in one fold): every image predicted by a model that never saw it"
maslow crossval "$D/embed-logreg.yaml" --folds 5 --out "$D/oof/predictions.parquet"

step "M2b. Label errors in classification: 3 labels flipped in a copy, found by maslow qa from out-of-fold predictions"
python - "$D" <<'PY'
import sys
from pathlib import Path

from maslow import io

d = Path(sys.argv[1])
ds = io.read(d / "data" / "squares.parquet", "parquet")
label = ds.annotations.label.copy()
flipped = [5, 17, 33]
label[flipped] = (label[flipped] + 1) % 3
io.write(ds.replace(annotations=ds.annotations.with_columns(label=label)), d / "data" / "noisy.parquet", "parquet")
cfg = (d / "embed-logreg.yaml").read_text().replace("squares.parquet", "noisy.parquet")
(d / "noisy.yaml").write_text(cfg)
print("flipped:", ", ".join(f"{ds.images.path[i]} ({ds.schema.names[label[i]]}, truly "
                            f"{ds.schema.names[ds.annotations.label[i]]})" for i in flipped))
PY
maslow qa --gt "$D/data/noisy.parquet" --from parquet --images-root "$D/data" --model "$D/noisy.yaml" --folds 5 \
  --out "$D/issues.json" --top 5
python -c "import json, sys; ranks = {i['file_name']: i['rank'] for i in json.load(open(sys.argv[1]))}; print('ranks of the flipped images:', {f: ranks.get(f) for f in ('images/sq_005.png', 'images/sq_017.png', 'images/sq_033.png')})" "$D/issues.json"

step "M3. Train once on everything (maslow train), then predict a folder of images"
maslow train "$D/embed-logreg.yaml" --out "$D/model" --set tracking=off
maslow predict "$D/model" "$D/data/images" --out "$D/predictions.parquet"
