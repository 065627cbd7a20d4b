#!/usr/bin/env bash
# Demo step: train (torchvision classifier, 2 epochs on 64 px images, then resumed to 3), tune (Optuna, 3 + 2
# resumed trials, on embed-logreg when scikit-learn is installed, else the classifier), list the tracked
# MLflow runs and export the model to ONNX, on a tiny generated image-folder dataset. Runs alone too:
# DEMO_OUT=demo-out bash scripts/demo_train.sh. Writes under $OUT/train/. Torch parts are skipped without torch.
set -euo pipefail
OUT=${DEMO_OUT:-demo-out}
D="$OUT/train"
step() { printf '\n\033[1;34m== %s\033[0m\n' "$*"; }
has() { python -c "import $1" 2>/dev/null; }
rm -rf "$D"
mkdir -p "$D"

step "T1. A tiny classification image folder: data/<split>/<class>/*.png, a coloured shape per 32x32 image"
python - "$D" <<'PY'
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

d = Path(sys.argv[1]).resolve()
rng = np.random.default_rng(0)
classes = {"circle": (220, 40, 40), "square": (40, 200, 40), "triangle": (40, 60, 220)}
for split, n in (("train", 10), ("val", 5)):
    for name, colour in classes.items():
        folder = d / "data" / split / name
        folder.mkdir(parents=True)
        for i in range(n):
            im = Image.new("RGB", (32, 32), tuple(int(v) for v in rng.integers(0, 60, 3)))
            r = int(rng.integers(6, 10))
            cx, cy = (int(v) for v in rng.integers(r, 32 - r, 2))
            draw = ImageDraw.Draw(im)
            if name == "circle":
                draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=colour)
            elif name == "square":
                draw.rectangle((cx - r, cy - r, cx + r, cy + r), fill=colour)
            else:
                draw.polygon([(cx, cy - r), (cx - r, cy + r), (cx + r, cy + r)], fill=colour)
            im.save(folder / f"{i}.png")
common = f"data: data\nformat: imagefolder\ntracking: {d / 'mlruns'}\nexperiment: demo\nseed: 0\n"
(d / "torch.yaml").write_text(common + "model: torchvision-classifier\nbackbone: auto\nepochs: 2\nimage_size: 64\n"
                              "batch_size: 8\nlr: 0.003\nthreads: 1\nout: model\n")
(d / "logreg.yaml").write_text(common + "model: embed-logreg\nbackbone: light\nout: tune\n"
                               f"params: {{cache_dir: {d / 'cache'}}}\n"
                               "search:\n  C: {low: 0.001, high: 100, log: true}\n")
(d / "torch-tune.yaml").write_text(common + "model: torchvision-classifier\nbackbone: mobilenet_v3_small\n"
                                   "pretrained: 'no'\nepochs: 2\nimage_size: 32\nthreads: 1\nout: tune\n"
                                   "search:\n  lr: {low: 1.0e-4, high: 1.0e-2, log: true}\n")
print(f"30 train + 15 val images in {d / 'data'}; configs torch.yaml, logreg.yaml, torch-tune.yaml")
PY

if has torchvision; then
  step "T2. maslow train: the torchvision classifier for 2 epochs on 64 px images (the output says which weights it started from)"
  (cd "$D" && maslow train torch.yaml --out model)
  step "T2b. maslow train --resume: the same run trained on to 3 epochs from its last checkpoint (model/last.pt)"
  (cd "$D" && maslow train torch.yaml --resume model --set epochs=3)
else
  step "T2. (skipped: torch is not installed; pip install 'maslow[torch]')"
fi

if has optuna; then
  if has sklearn; then TUNE=logreg.yaml; else TUNE=torch-tune.yaml; fi
  if [[ $TUNE == torch-tune.yaml ]] && ! has torchvision; then
    step "T3. (skipped: neither scikit-learn nor torch is installed)"
  else
    step "T3. maslow tune --trials 3 ($TUNE), then 2 more trials resumed from the same SQLite study"
    (cd "$D" && maslow tune "$TUNE" --trials 3 --storage "sqlite:///$PWD/optuna.db" --study demo)
    (cd "$D" && maslow tune "$TUNE" --trials 2 --storage "sqlite:///$PWD/optuna.db" --study demo --json \
      | python -c "import json,sys; d=json.load(sys.stdin); print(f\"resumed: {len(d['trials'])} trials in study \
{d['study_name']}, best {d['metric']} {d['best_value']:.3f} with {d['best_params']}\")")
  fi
else
  step "T3. (skipped: optuna is not installed; pip install 'maslow[models]')"
fi

if has mlflow; then
  step "T4. maslow runs: every training run and tuning trial, tracked in MLflow"
  maslow runs --experiment demo --tracking "$D/mlruns"
else
  step "T4. (skipped: mlflow is not installed; pip install 'maslow[models]')"
fi

if has torchvision && has onnxruntime; then
  step "T5. maslow export MODEL --onnx: the trained classifier as ONNX, checked against torch with onnxruntime"
  maslow export "$D/model" --onnx
else
  step "T5. (skipped: torch or onnxruntime is not installed)"
fi
