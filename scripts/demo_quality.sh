#!/usr/bin/env bash
# Demo step: rule checks on ground truth without a model (level 3). Plants problems in a copy of the shapes
# sample, lists the top issues and writes $OUT/quality.html. Runs alone too: DEMO_OUT=demo-out bash scripts/demo_quality.sh
set -euo pipefail
OUT=${DEMO_OUT:-demo-out}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
step() { printf '\n\033[1;34m== %s\033[0m\n' "$*"; }

if [[ ! -f "$OUT/shapes/annotations.json" ]]; then
  maslow sample "$OUT/shapes" --n-images 48
fi

step "Q1. Check the clean sample: geometry, duplicates, consistency, bias (no findings expected)"
maslow check "$OUT/shapes/annotations.json" --from coco

step "Q2. Plant problems (zero-area and out-of-bounds boxes, a duplicate, a class conflict, a bow-tie polygon, \
a stray keypoint, a second annotator who disagrees) and check again, with an HTML report"
python "$HERE/demo_quality.py" "$OUT/shapes/annotations.json" "$OUT/shapes-planted.json"
maslow check "$OUT/shapes-planted.json" --from coco --images-root "$OUT/shapes" --top 15 --html "$OUT/quality.html"

step "Q3. Crop embeddings: relabel 3 shapes as another class; --outliers embeds every box crop and flags objects \
that look like another class"
python - "$OUT/shapes/annotations.json" "$OUT/shapes-relabelled.json" <<'PY'
import sys
import warnings

import numpy as np

from maslow import io

warnings.simplefilter("ignore")
ds = io.read_coco(sys.argv[1])
label = ds.annotations.label.copy()
rows = np.flatnonzero(~ds.annotations.iscrowd)[[2, 9, 20]]
label[rows] = (label[rows] + 1) % 3
io.write_coco(ds.replace(annotations=ds.annotations.with_columns(label=label)), sys.argv[2])
print("relabelled annotation rows", rows.tolist())
PY
maslow check "$OUT/shapes-relabelled.json" --from coco --images-root "$OUT/shapes" --outliers --top 8
