#!/usr/bin/env bash
# `make demo`: the main job end to end on data the project generates itself.
set -euo pipefail
OUT=${DEMO_OUT:-demo-out}
# the sub-scripts by this script's own folder: OUT may be anywhere (an absolute path, or out/demo two levels down)
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
rm -rf "$OUT"
mkdir -p "$OUT"
step() { printf '\n\033[1;34m== %s\033[0m\n' "$*"; }

step "1. Generate a sample dataset (48 images of shapes: boxes, polygons, masks, keypoints, crowd, attributes)"
maslow sample "$OUT/shapes" --n-images 48

step "2. Create a workspace and import the dataset as a versioned snapshot (technical checks run on import)"
maslow init "$OUT/ws"
(cd "$OUT/ws" && maslow import ../shapes/annotations.json --from coco --name shapes)

step "3. Statistics: per class and split, annotations per image, box sizes, label types"
(cd "$OUT/ws" && maslow stats)

# Level 1: diverse raw data (balance and remedies, near-duplicates and split leakage, coverage, diverse ordering)
DEMO_OUT="$OUT" bash "$HERE/demo_diversity.sh"
if [[ -f "$HERE/demo_select.sh" ]]; then DEMO_OUT="$OUT" bash "$HERE/demo_select.sh"; fi

# Level 2: annotation strategy (schema, validation, migration, cost)
DEMO_OUT="$OUT" bash "$HERE/demo_schema.sh"

# Level 3: clean ground truth without a model (rule checks, overlaps, agreement, bias, HTML report)
DEMO_OUT="$OUT" bash "$HERE/demo_quality.sh"

step "4. Export the version to every format and read each back: what survives, what each format can't hold"
(cd "$OUT/ws" && python "$HERE/demo_roundtrip.py" shapes ../exports)

step "5. Convert without a workspace: COCO -> YOLO"
maslow convert "$OUT/shapes/annotations.json" "$OUT/yolo-direct" --from coco --to yolo

step "6. Technical import errors: a copy of the COCO file with planted mistakes"
python "$HERE/demo_broken.py" "$OUT/shapes/annotations.json" "$OUT/broken.json"
(cd "$OUT/ws" && maslow import ../broken.json --from coco --name broken --images-root ../shapes) || true
(cd "$OUT/ws" && maslow import ../broken.json --from coco --name broken --images-root ../shapes --strict) \
  || echo "(--strict refused the file with exit code $?, as asked)"
# a CI gate: the converted files are written, then exit code 1 because the report holds errors
maslow convert "$OUT/broken.json" "$OUT/broken-yolo" --from coco --to yolo --images-root "$OUT/shapes" \
  --fail-on error --overwrite > /dev/null || echo "(--fail-on error: exit code $? after writing $OUT/broken-yolo)"

# Level 4: clean ground truth at scale (consensus scoring of out-of-fold predictions: label errors, ranked)
DEMO_OUT="$OUT" bash "$HERE/demo_qa.sh"

DEMO_OUT="$OUT" bash "$HERE/demo_eval.sh"  # 7. evaluate a detector (level 5)

# Level 5: models (embeddings + logistic regression, out-of-fold predictions, train, tune, runs, ONNX, a detector)
DEMO_OUT="$OUT" bash "$HERE/demo_models.sh"
DEMO_OUT="$OUT" bash "$HERE/demo_train.sh"
DEMO_OUT="$OUT" bash "$HERE/demo_detect.sh"

step "8. The version log"
(cd "$OUT/ws" && maslow log shapes && maslow log broken)

printf '\nDone. Everything is under %s/\n' "$OUT"
