#!/usr/bin/env bash
# Level 2, the annotation strategy: infer a schema, validate against it, migrate (classes <-> attribute),
# show the change log and compare the cost of two labelling strategies.
set -euo pipefail
OUT=${DEMO_OUT:-demo-out}
step() { printf '\n\033[1;34m== %s\033[0m\n' "$*"; }
SHAPES="$OUT/shapes/annotations.json"
if [ ! -f "$SHAPES" ]; then
  maslow sample "$OUT/shapes" --n-images 48 >/dev/null
fi
S="$OUT/schema"
mkdir -p "$S"

step "Schema 1. Draft a schema from the annotations (label types per class, attribute types and values)"
maslow schema infer "$SHAPES" --from coco -o "$S/schema.yaml"
cat "$S/schema.yaml"

step "Schema 2. Validate the data against it (nothing to find), then against a stricter schema: boxes only, colour red|green"
maslow schema validate "$SHAPES" --from coco --schema "$S/schema.yaml"
python - "$S/schema.yaml" "$S/strict.yaml" <<'PY'
import sys, yaml
d = yaml.safe_load(open(sys.argv[1]))
for c in d["classes"]:
    c["label_types"] = ["box"]
for a in d["attributes"]:
    if a["name"] == "colour":
        a["values"] = ["red", "green"]
yaml.safe_dump(d, open(sys.argv[2], "w"), sort_keys=False)
PY
maslow schema validate "$SHAPES" --from coco --schema "$S/strict.yaml" --top 5
maslow schema validate "$SHAPES" --from coco --schema "$S/strict.yaml" --strict >/dev/null \
  || echo "(--strict exits with code $? when violations exist)"

step "Schema 3. A new strategy: circle and square become one class 'shape' with a 'shape_type' attribute"
python - "$S/schema.yaml" "$S/schema_v2.yaml" <<'PY'
import sys, yaml
d = yaml.safe_load(open(sys.argv[1]))
old = [c for c in d["classes"] if c["name"] in ("circle", "square")]
types = list(dict.fromkeys(t for c in old for t in c.get("label_types", [])))  # what both classes use
d["classes"] = [dict(old[0], name="shape", label_types=types)] + [c for c in d["classes"] if c["name"] not in ("circle", "square")]
d["attributes"].append({"name": "shape_type", "type": "enum", "values": ["circle", "square"], "required": True,
                        "classes": ["shape"]})
d["version"] = 2
yaml.safe_dump(d, open(sys.argv[2], "w"), sort_keys=False)
PY
maslow schema diff "$S/schema.yaml" "$S/schema_v2.yaml"
maslow schema migrate "$SHAPES" --from coco --to "$S/schema_v2.yaml" -o "$S/v2/annotations.json" --to-format coco
echo "--- the replayable migration file:"
cat "$S/v2/annotations.migration.yaml"
maslow schema validate "$S/v2/annotations.json" --from coco --schema "$S/schema_v2.yaml"

step "Schema 3b. Replay the migration file on new data, and migrate back (shape_type values become classes again)"
maslow sample "$S/new-batch" --n-images 12 --seed 9 --overwrite >/dev/null
maslow schema migrate "$S/new-batch/annotations.json" --from coco --migration "$S/v2/annotations.migration.yaml" \
  -o "$S/new-batch-v2.json" --to-format coco
maslow schema migrate "$S/v2/annotations.json" --from coco --current "$S/schema_v2.yaml" --to "$S/schema.yaml" -o "$S/back/annotations.json" \
  --to-format coco
maslow schema validate "$S/back/annotations.json" --from coco --schema "$S/schema.yaml"

step "Schema 4. Dropping a class loses annotations: refused without --allow-lossy"
python - "$S/schema.yaml" "$S/no_triangle.yaml" <<'PY'
import sys, yaml
d = yaml.safe_load(open(sys.argv[1]))
d["classes"] = [c for c in d["classes"] if c["name"] != "triangle"]
yaml.safe_dump(d, open(sys.argv[2], "w"), sort_keys=False)
PY
maslow schema migrate "$SHAPES" --from coco --to "$S/no_triangle.yaml" -o "$S/v3" --to-format yolo --overwrite \
  || echo "(refused with exit code $?, as asked)"
maslow schema migrate "$SHAPES" --from coco --to "$S/no_triangle.yaml" -o "$S/v3" --to-format yolo --allow-lossy --overwrite

step "Schema 5. Annotation cost: boxes (extreme clicking, 7 s) vs polygons (1.5 s per vertex) vs masks"
maslow schema cost "$SHAPES" --from coco --strategy boxes=box --strategy polygons=polygon --strategy masks=mask
