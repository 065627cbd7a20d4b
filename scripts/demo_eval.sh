#!/usr/bin/env bash
# Demo step: evaluate simulated predictions on the demo's shapes dataset (called from demo.sh after step 1;
# runs alone too: DEMO_OUT=demo-out bash scripts/demo_eval.sh). Writes $OUT/predictions.json, $OUT/eval.json
# and the plots under $OUT/eval-plots/; 7c the oriented-box scene under $OUT/aerial/, 7d the panoptic one under
# $OUT/panoptic/, 7e the Open Images one under $OUT/openimages/.
set -euo pipefail
OUT=${DEMO_OUT:-demo-out}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
step() { printf '\n\033[1;34m== %s\033[0m\n' "$*"; }

if [[ ! -f "$OUT/shapes/annotations.json" ]]; then
  maslow sample "$OUT/shapes" --n-images 48
fi

step "7. Evaluate a detector: simulated predictions (jittered boxes, misses, wrong classes, false alarms), COCO mAP, \
per-class AP, per-class score thresholds when a miss costs 5 false alarms, mAP per split, the AP lost to each TIDE error \
type, plots"
python "$HERE/demo_predictions.py" "$OUT/shapes/annotations.json" "$OUT/predictions.json" --seed 0
maslow eval --gt "$OUT/shapes/annotations.json" --pred "$OUT/predictions.json" \
  --cost-fp 1 --cost-fn 5 --slice-by split --errors --plot "$OUT/eval-plots" --json "$OUT/eval.json"

step "7b. Is a second detector better? maslow compare: both models' COCO stats, B - A with paired bootstrap intervals \
over images, per-class AP deltas, score calibration, an HTML report"
python "$HERE/demo_predictions.py" "$OUT/shapes/annotations.json" "$OUT/predictions_b.json" --seed 1
maslow compare --gt "$OUT/shapes/annotations.json" --pred "$OUT/predictions.json" --pred "$OUT/predictions_b.json" \
  --bootstrap 300 --seed 0 --html "$OUT/compare.html" --json "$OUT/compare.json"

step "7c. Oriented boxes (aerial planes, ships, vehicles at any angle): COCO mAP matched by the rotated rectangles' IoU, \
the TIDE errors, DOTA_devkit's protocol (VOC2007 11-point AP at IoU 0.5), label errors and corner checks; hotcoco's obb \
files read, the scene written as DOTA labelTxt"
python "$HERE/demo_obb.py" "$OUT/aerial"
maslow eval --gt "$OUT/aerial/annotations.json" --pred "$OUT/aerial/predictions.json" --iou-type obb --errors \
  --json "$OUT/eval_obb.json"
maslow eval --gt "$OUT/aerial/annotations.json" --pred "$OUT/aerial/predictions.json" --iou-type obb --protocol voc \
  --voc-metric 2007 --voc-strict --json "$OUT/eval_obb_voc.json"
maslow qa --gt "$OUT/aerial/noisy.json" --pred "$OUT/aerial/oof_predictions.json" --rules --top 5 \
  --out "$OUT/aerial/issues.json" --html "$OUT/aerial/qa.html"   # planted label errors, by the rectangles' IoU
python "$HERE/demo_obb.py" "$OUT/aerial" --score "$OUT/aerial/issues.json" --top 24
maslow convert "$OUT/aerial/annotations.json" "$OUT/aerial/dota" --from coco --to dota --write-option images=false --overwrite

step "7d. Panoptic segmentation (sky, road and grass as stuff; cars and people as things): COCO panoptic files read, \
Panoptic Quality (PQ, SQ, RQ for all, things and stuff, per class) by panopticapi's rules"
python "$HERE/demo_panoptic.py" "$OUT/panoptic"
maslow eval --gt "$OUT/panoptic/panoptic.json" --from coco-panoptic --pred "$OUT/panoptic/pred.json" \
  --pred-format coco-panoptic --json "$OUT/eval_panoptic.json"

step "7e. Open Images (normalised boxes, group-of boxes over crowds, verified image-level labels, a class hierarchy of \
MIDs): its CSVs read, the challenge's protocol (a detection inside a group-of box: one TP per box; classes not verified \
on an image left out; boxes and labels counted for their ancestors), then the truth converted to COCO"
python "$HERE/demo_openimages.py" "$OUT/openimages"
maslow eval --gt "$OUT/openimages" --from openimages --pred "$OUT/openimages/predictions.csv" \
  --pred-format openimages-results --protocol openimages --hierarchy "$OUT/openimages/hierarchy.json" \
  --json "$OUT/eval_openimages.json"
maslow convert "$OUT/openimages" "$OUT/openimages/coco.json" --from openimages --to coco
