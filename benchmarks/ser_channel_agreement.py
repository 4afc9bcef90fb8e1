"""The same speech through a bundle as other devices would hear it: do the reported emotions change?

Issue 19's first measurement, on the runtime path (ONNX Runtime backend, the stream's windows,
VAD, smoothing and ``match_level``): the demo's mixture scaled by a constant gain, or passed
through a held-out microphone or room at its own level (training/channels.py), each run through
:func:`emotrt.runtime.offline.evaluate_offline` (the results a stream gives), and the share of
speech windows whose reported emotion equals the unaltered run's.

    python benchmarks/ser_channel_agreement.py out/demo/bundle out/demo/mixture.wav SPEAKER ENVIRONMENT \
        [--enrollment out/demo/enroll.wav] [--tse auto|gated|on|off]

``--enrollment``: the speaker is enrolled again from this recording through each condition (the
same device records the enrollment and the stream), in a copy of the bundle, before its run: what
an SER with an enrollment level reference (``emotrt.runtime.level``) needs to cancel the gain.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

GAINS = (-20.0, -12.0, -6.0, -3.0, 3.0, 6.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bundle")
    parser.add_argument("mixture")
    parser.add_argument("speaker")
    parser.add_argument("environment")
    parser.add_argument("--enrollment", default=None, help="enroll the speaker from this WAV through each condition")
    parser.add_argument("--tse", default="auto", help="PipelineConfig.tse: auto, gated, on or off")
    parser.add_argument("--out", default=None, help="write the rows as JSON here")
    args = parser.parse_args()
    import shutil
    import tempfile

    import soundfile as sf

    from emotrt.export.enroll import enroll_speaker
    from emotrt.runtime import Pipeline, PipelineConfig
    from emotrt.runtime.offline import evaluate_offline
    from emotrt.training.channels import CHANNELS, conditions

    audio, rate = sf.read(args.mixture, dtype="float32")
    if rate != 16000:
        raise SystemExit("expected a 16 kHz mixture (the conditions are designed at 16 kHz), got {} Hz".format(rate))
    conds = conditions(GAINS, tuple(CHANNELS))
    rows = []
    work = Path(tempfile.mkdtemp(prefix="emotrt-agreement-"))
    bundle = Path(args.bundle)
    if args.enrollment:
        bundle = Path(shutil.copytree(args.bundle, work / "bundle"))
        enrollment, _ = sf.read(args.enrollment, dtype="float32")

    def run(apply):
        if args.enrollment:
            sf.write(str(work / "enroll.wav"), apply(enrollment), rate, subtype="FLOAT")
            enroll_speaker(bundle / "speakers", args.speaker, work / "enroll.wav", bundle / "models" / "enroll.onnx",
                           replace=True)
        with Pipeline.from_bundle(bundle, backend="onnxruntime", config=PipelineConfig(tse=args.tse)) as pipeline:
            return evaluate_offline(pipeline, rate, apply(audio), args.speaker, args.environment)

    try:
        reference = run(lambda a: a)
        print("| input | speech windows | labels equal to the unaltered run | raw argmax equal |")
        print("|---|---|---|---|")
        print("| unaltered | {} | | |".format(sum(r.speech for r in reference)))
        for name, cond in conds.items():
            results = run(cond.apply)
            both = [(a, b) for a, b in zip(reference, results) if a.speech and b.speech]
            same = float(np.mean([a.emotion == b.emotion for a, b in both])) if both else float("nan")
            raw = float(np.mean([np.argmax(a.raw) == np.argmax(b.raw) for a, b in both])) if both else float("nan")
            rows.append(dict(condition=name, description=cond.description, speech_windows=sum(r.speech for r in results),
                             compared=len(both), agreement=same, raw_agreement=raw))
            print("| {} | {} | {:.0%} | {:.0%} |".format(name, rows[-1]["speech_windows"], same, raw), flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if args.out:
        Path(args.out).write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
