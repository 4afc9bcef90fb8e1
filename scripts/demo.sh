#!/usr/bin/env bash
# The main job on the embedded default checkpoints (checkpoints/): synthetic corpus -> ONNX export
# -> INT8/FP16 calibration -> bundle for a Jetson Orin Nano 8 GB -> self-test -> a streaming run.
set -euo pipefail
BIN=${BIN:-.venv/bin}
DATA=${DATA:-data/synth}
OUT=${OUT:-out/demo}
TARGET=${TARGET:-orin-nano-8gb}
E="$BIN/emotrt"

$E data synth --out "$DATA" --size small --seed 0
$E export checkpoints/tse_edge checkpoints/ser_fbank --out "$OUT/export" --environments "$DATA/environments.json" --force
read -r SPEAKER ENVIRONMENT < <("$BIN/python" scripts/demo_inputs.py "$DATA" "$OUT")
$E enroll "$SPEAKER" "$OUT/enroll.wav" --model "$OUT/export/enroll.onnx" --store "$OUT/export/speakers" --replace
# The small corpus' check holds 64 utterances per scene: one changed label is 1.6 points, so the
# default 1-point budgets (made for the full corpus' 240) would admit no INT8 block at all.
$E calibrate "$OUT/export" --data "$DATA/manifests/valid.jsonl" --out "$OUT/calibration" --force \
  --max-ua-drop 0.02 --max-label-change 0.02
$E build "$OUT/export" --calibration "$OUT/calibration" --speakers "$OUT/export/speakers" --target "$TARGET" --out "$OUT/bundle" --tar --force
$E selftest "$OUT/bundle"
rm -f "$OUT/results.jsonl"  # --jsonl appends (a service's log); the demo reports this run alone
$E run "$OUT/bundle" --file "$OUT/mixture.wav" --speaker "$SPEAKER" --environment "$ENVIRONMENT" --jsonl "$OUT/results.jsonl"
echo "results: $OUT/results.jsonl ($(wc -l < "$OUT/results.jsonl") lines); bundle: $OUT/bundle.tar"
$E doctor
