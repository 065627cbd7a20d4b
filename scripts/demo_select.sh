#!/usr/bin/env bash
# Level 1, diverse ordering: which images to label first (light embedder: fast and torch-free).
set -euo pipefail
OUT=${DEMO_OUT:-demo-out}
step() { printf '\n\033[1;34m== %s\033[0m\n' "$*"; }
if [[ ! -f "$OUT/shapes/annotations.json" ]]; then maslow sample "$OUT/shapes" --n-images 48 > /dev/null; fi

step "Select: order the shapes images most informative first (12 sequences of 4 frames; blank frames held back)"
maslow select "$OUT/shapes/annotations.json" --from coco --budget 24 --embedder light \
  --cache-dir "$OUT/embed-cache" --top 12 -o "$OUT/select-order.txt"

step "Select: the same as JSON for scripts (first picks and the sequences they come from)"
maslow select "$OUT/shapes/annotations.json" --from coco --budget 12 --embedder light \
  --cache-dir "$OUT/embed-cache" --json \
  | python -c 'import json,sys; d=json.load(sys.stdin); print(d["strategy"], [p["path"] for p in d["picks"][:6]], "...", len(d["gated"]), "held back")'

step "Outliers: images far from the rest in embedding space (cached embeddings are reused)"
maslow outliers "$OUT/shapes/annotations.json" --from coco --embedder light --cache-dir "$OUT/embed-cache" --top 5

step "Embed: features for your own model or analysis"
maslow embed "$OUT/shapes/annotations.json" --from coco --embedder light --cache-dir "$OUT/embed-cache" \
  -o "$OUT/features.npy"
