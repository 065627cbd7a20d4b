#!/usr/bin/env bash
# Level 4: consensus scoring. Plant label errors in the shapes sample, make "out-of-fold" predictions from the
# clean truth (perturbed, as a model would see it), and let `maslow qa` find the planted errors.
set -euo pipefail
OUT=${DEMO_OUT:-demo-out}
step() { printf '\n\033[1;34m== %s\033[0m\n' "$*"; }
if [[ ! -f "$OUT/shapes/annotations.json" ]]; then maslow sample "$OUT/shapes" --n-images 48 >/dev/null; fi
mkdir -p "$OUT/qa"

step "QA 1. Plant errors in a copy of the truth (a swapped class, a dropped box, a spurious box, a shifted box) and simulate predictions"
python - "$OUT/shapes/annotations.json" "$OUT/qa" <<'PY'
import json, sys, random
src, dst = sys.argv[1], sys.argv[2]
coco = json.load(open(src))
rng = random.Random(0)
anns = [a for a in coco["annotations"] if not a.get("iscrowd")]
preds = []
for a in anns:  # the model sees the clean truth, a little off, with a high score
    x, y, w, h = a["bbox"]
    preds.append({"image_id": a["image_id"], "category_id": a["category_id"], "score": round(rng.uniform(0.6, 0.99), 3),
                  "bbox": [x + rng.uniform(-1, 1), y + rng.uniform(-1, 1), w * rng.uniform(0.95, 1.05), h * rng.uniform(0.95, 1.05)]})
for img in coco["images"][:10]:  # and a few weak false positives
    preds.append({"image_id": img["id"], "category_id": 1, "score": round(rng.uniform(0.05, 0.3), 3), "bbox": [2, 2, 12, 12]})
json.dump(preds, open(f"{dst}/predictions.json", "w"))
planted = {}
by_size = sorted(anns, key=lambda a: -a["bbox"][2] * a["bbox"][3])
swap, drop, shift = by_size[0], by_size[1], by_size[2]
swap["category_id"] = 2 if swap["category_id"] != 2 else 1
shift["bbox"] = [shift["bbox"][0] + 0.45 * shift["bbox"][2], shift["bbox"][1] + 0.45 * shift["bbox"][3], shift["bbox"][2], shift["bbox"][3]]
coco["annotations"] = [a for a in coco["annotations"] if a is not drop]
img = coco["images"][-1]
coco["annotations"].append({"id": 99999, "image_id": img["id"], "category_id": 3, "bbox": [img["width"] - 30, 2, 25, 25],
                            "area": 625, "iscrowd": 0})
json.dump(coco, open(f"{dst}/noisy.json", "w"))
print(f"planted: wrong_class annotation {swap['id']}, missing object of annotation {drop['id']} (image {drop['image_id']}), "
      f"low_iou annotation {shift['id']}, extra annotation 99999")
PY

step "QA 2. maslow qa: rank the annotations most likely wrong, with the model's suggested fix"
maslow qa --gt "$OUT/qa/noisy.json" --images-root "$OUT/shapes" --pred "$OUT/qa/predictions.json" \
  --out "$OUT/qa/issues.json" --html "$OUT/qa/issues.html" --top 8

step "QA 3. The same as JSON for scripts (the first 2 issues)"
maslow qa --gt "$OUT/qa/noisy.json" --pred "$OUT/qa/predictions.json" --out "$OUT/qa/issues.json" --json --top 2 \
  | python -c "import json,sys; d=json.load(sys.stdin); print(json.dumps({k: d[k] for k in ('n_issues', 'counts', 'top')}, indent=1))"

if python -c "import fastapi, uvicorn, sqlalchemy" 2>/dev/null; then
  step "QA 4. Review the findings in the web UI (maslow review; here driven over its HTTP API): accept the 4 strongest, reject the rest"
  rm -f "$OUT/qa/issues.review.db"
  port=$(python -c "import socket; s=socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])")
  maslow review "$OUT/qa/issues.json" --gt "$OUT/qa/noisy.json" --images-root "$OUT/shapes" --port "$port" --no-open \
    > "$OUT/qa/review_server.log" 2>&1 &
  server=$!
  python - "$port" <<'PY'
import json, sys, time, urllib.request
base = f"http://127.0.0.1:{sys.argv[1]}"
for _ in range(200):  # the server starts in a second or two
    try:
        urllib.request.urlopen(base + "/api/summary", timeout=1)
        break
    except OSError:
        time.sleep(0.1)
page = urllib.request.urlopen(base + "/").read().decode()
print(f"{base}/ serves the review page ({len(page)} bytes); a reviewer opens it in a browser")
found = json.load(urllib.request.urlopen(base + "/api/findings?limit=100"))
rows = found["items"]
for f in rows:
    status = "accepted" if f["rank"] <= 4 else "rejected"
    req = urllib.request.Request(f"{base}/api/findings/{f['rank']}/decision", method="POST",
                                 data=json.dumps({"status": status, "reviewer": "demo"}).encode(),
                                 headers={"Content-Type": "application/json"})
    urllib.request.urlopen(req)
    if status == "accepted":
        print(f"  accepted #{f['rank']} {f['type']:11s} {f['reason']}")
print(f"  rejected the other {len(rows) - 4}")
PY
  kill "$server"; wait "$server" 2>/dev/null || true
  maslow review status "$OUT/qa/issues.json"

  step "QA 5. Apply the accepted fixes: a corrected ground truth, and the same predictions scored against both"
  maslow review apply "$OUT/qa/issues.json" --gt "$OUT/qa/noisy.json" --images-root "$OUT/shapes" \
    --out "$OUT/qa/fixed.json" --to coco
  for gt in noisy fixed; do
    printf '%s: ' "$gt"
    maslow eval --gt "$OUT/qa/$gt.json" --pred "$OUT/qa/predictions.json" --json - 2>/dev/null \
      | python -c "import json,sys; s=json.load(sys.stdin)['map']['stats']; print(f\"mAP {s['map_50_95']:.3f}, AP50 {s['map_50']:.3f}\")"
  done
else
  step "QA 4. (skipped: the review UI needs fastapi, uvicorn and sqlalchemy: pip install 'maslow[serve]')"
fi

step "QA 6. Semantic segmentation: a car erased in one of 12 label maps, found from the model's per-pixel probabilities"
python - "$OUT/qa/semantic" <<'PY'
import sys
from pathlib import Path
import numpy as np
from PIL import Image
root = Path(sys.argv[1])
for sub in ("annotations", "images", "probs"):
    (root / sub).mkdir(parents=True, exist_ok=True)
(root / "annotations" / "classes.txt").write_text("road\ncar\ntree\n")
rng = np.random.default_rng(0)
for i in range(12):
    seen = np.zeros((60, 80), np.uint8)            # what the image shows: road, a car, a tree
    y, x = rng.integers(5, 35), rng.integers(5, 50)
    seen[y:y + 15, x:x + 25] = 1
    seen[:, 70:] = 2
    label = seen.copy()
    if i == 7:
        label[label == 1] = 0                       # the planted error: the car painted road
    Image.fromarray(label).save(root / "annotations" / f"frame_{i:02d}.png")
    Image.new("RGB", (80, 60), (90, 90, 90)).save(root / "images" / f"frame_{i:02d}.png")
    logits = 4.0 * (seen[None] == np.arange(3)[:, None, None]) + rng.normal(0, 1.0, (3, 60, 80))
    p = np.exp(logits) / np.exp(logits).sum(axis=0)  # a model's softmax, (K, H, W)
    np.save(root / "probs" / f"frame_{i:02d}.npy", p.astype(np.float16))
PY
maslow qa --gt "$OUT/qa/semantic/annotations" --from masks --pred-probs "$OUT/qa/semantic/probs" \
  --out "$OUT/qa/semantic_issues.json" --top 3
