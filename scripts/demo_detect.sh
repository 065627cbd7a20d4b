#!/usr/bin/env bash
# Demo step: train a tiny torchvision detector (Faster R-CNN, EfficientNet-Lite0 backbone) for a few steps on the
# demo's shapes sample, predict with it, evaluate the predictions and export it to ONNX (called from demo.sh after step 1; runs alone
# too: DEMO_OUT=demo-out bash scripts/demo_detect.sh). Skipped when torch is not installed. Writes
# $OUT/detect.yaml, the model folder $OUT/detect-model, $OUT/detect-pred.json and $OUT/detect-eval.json.
set -euo pipefail
OUT=${DEMO_OUT:-demo-out}
step() { printf '\n\033[1;34m== %s\033[0m\n' "$*"; }

if ! python -c "import torch, torchvision, efficientnet_lite_pytorch" 2>/dev/null; then
  echo "demo_detect: skipped (torch/torchvision are not installed: pip install 'maslow[torch]')"
  exit 0
fi
if [[ ! -f "$OUT/shapes/annotations.json" ]]; then
  maslow sample "$OUT/shapes" --n-images 48
fi

step "Detection: fine-tune Faster R-CNN (EfficientNet-Lite0 ImageNet backbone, offline) for 2 tiny epochs"
cat > "$OUT/detect.yaml" <<'YAML'
data: shapes/annotations.json   # relative to this file
format: coco
model: fasterrcnn
backbone: auto                  # efficientnet-lite0 with its ImageNet weights from the installed package
image_size: 64                  # longer side; a real run uses 320-640
epochs: 2
batch_size: 4
lr: 0.01
patience: 0
threads: 1                      # one thread: fastest on a small, shared CPU
tracking: "off"
out: detect-model
params: {score_threshold: 0.01, max_detections: 20, proposals: 50, box_batch_size: 64}
YAML
maslow train "$OUT/detect.yaml" --out "$OUT/detect-model" --overwrite

step "Detection: predict on every image of the sample, then COCO mAP of the predictions"
maslow predict "$OUT/detect-model" "$OUT/shapes/annotations.json" --from coco \
  --out "$OUT/detect-pred.json" --to coco-results
maslow eval --gt "$OUT/shapes/annotations.json" --pred "$OUT/detect-pred.json" --json "$OUT/detect-eval.json"

step "Detection: export the detector to ONNX, checked against torch with onnxruntime (on a training image too)"
maslow export "$OUT/detect-model" --onnx
