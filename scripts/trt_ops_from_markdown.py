"""Turn onnx-tensorrt's docs/operators.md into the lint's data file (export/trt_ops/<version>.json).

    python scripts/trt_ops_from_markdown.py operators.md --trt 8.5 \
        --source "onnx/onnx-tensorrt@8.5-GA:docs/operators.md" --commit fdeeaca... -o export/trt_ops/8.5.json

Only the support matrix is read: operator, Y/N, supported types, restrictions (as text).
"""
import argparse
import json
import re
from pathlib import Path

HEADER = re.compile(r"TensorRT ([0-9.]+) supports operators (?:up to Opset (\d+)|in the inclusive range of opset (\d+) to opset (\d+))")


def parse(text):
    match = HEADER.search(text)
    if not match:
        raise SystemExit("no 'TensorRT X supports operators ...' header found")
    documented, up_to, low, high = match.groups()
    operators = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if not line.startswith("|") or len(cells) < 2 or cells[1][:1] not in ("Y", "N") or cells[0] == "Operator":
            continue
        operators[cells[0]] = {
            "supported": cells[1].startswith("Y"),
            "experimental": "EXPERIMENTAL" in cells[1],
            "types": [t.strip() for t in cells[2].split(",") if t.strip()] if len(cells) > 2 else [],
            "restrictions": " ".join(c for c in cells[3:] if c).replace("<br />", " ").replace("\\.", "."),
        }
    opset = [int(low), int(high)] if low else [1, int(up_to)]
    return documented, opset, operators


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("markdown")
    ap.add_argument("--trt", required=True, help="the TensorRT version this file serves (lint --trt value)")
    ap.add_argument("--source", required=True)
    ap.add_argument("--commit", default=None)
    ap.add_argument("--note", default="")
    ap.add_argument("-o", "--output", required=True)
    args = ap.parse_args()
    documented, opset, operators = parse(Path(args.markdown).read_text())
    data = {
        "tensorrt": args.trt,
        "documented_version": documented,
        "source": args.source,
        "commit": args.commit,
        "note": args.note,
        "opset": opset,
        "operators": operators,
    }
    Path(args.output).write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    print("{}: {} operators ({} supported), opset {}".format(args.output, len(operators), sum(o["supported"] for o in operators.values()), opset))


if __name__ == "__main__":
    main()
