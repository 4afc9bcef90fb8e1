"""Check the TSE and its gate on real recorded speech no one here synthesised (never used in training).

Recordings: Debian's ``codec2-examples`` (``usr/share/codec2/wav``: radio amateurs and test
speakers, 8 kHz) and ``alsa-utils``' channel announcements (``/usr/share/sounds/alsa``, one
speaker, 48 kHz), all resampled to 16 kHz. Get the first without installing it::

    apt-get download codec2-examples && dpkg -x codec2-examples_*.deb /work/data/real/codec2

Targets are the speakers with enough audio (their first 3 s enroll them, 3 s segments after that
are targets); interferers are every other recording. Conditions per target segment: another
speaker at −5, 0 and +5 dB SIR; synthetic environment noise (the corpus' test split) at −5 dB SNR;
the target alone; and the other speaker alone (the enrolled speaker absent). Through a bundle, with the same
library calls as ``emotrt extract`` and ``emotrt run``:

    python benchmarks/tse_real_speech.py make --codec2 /work/data/real/codec2 --corpus /work/data/synth --out /work/data/real/check
    for s in ...; do emotrt enroll $s /work/data/real/check/enroll_$s.wav --model EXPORT/enroll.onnx --store EXPORT/speakers; done
    (or: python benchmarks/tse_real_speech.py enroll --check /work/data/real/check --export EXPORT)
    emotrt build EXPORT --speakers EXPORT/speakers ... --out BUNDLE
    python benchmarks/tse_real_speech.py score --check /work/data/real/check --bundle BUNDLE
    python benchmarks/tse_real_speech.py absent --corpus /work/data/synth --bundle BUNDLE   # synthetic test speakers

``score`` prints mean SI-SDRi of the raw extraction and of the gated SER input per condition, the
gate's decisions, and the share of windows reported as the enrolled speaker's speech when they
are absent and when they talk alone.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Dict, List

import numpy as np

RATE = 16000
SEGMENT = 3 * RATE
TARGETS = {"ve9qrp": "ve9qrp.wav", "vk2tpm": "vk2tpm_004.wav", "vk5qi": "vk5qi.wav", "david": "david4.wav"}
INTERFERERS_ONLY = ("hts1a.wav", "hts2a.wav", "mmt1.wav", "morig.wav", "forig.wav", "big_dog.wav")
ALSA = "/usr/share/sounds/alsa"


def _read(path: Path) -> np.ndarray:
    import soundfile as sf
    import soxr

    audio, rate = sf.read(str(path), dtype="float32", always_2d=True)
    audio = audio.mean(axis=1)
    return soxr.resample(audio, rate, RATE).astype(np.float32) if rate != RATE else audio


def _active(x: np.ndarray) -> bool:
    frames = x[: len(x) // 320 * 320].reshape(-1, 320)
    level = 10 * np.log10((frames ** 2).mean(1) + 1e-10)
    return float((level > level.max() - 30).mean()) > 0.6


def _scale(x: np.ndarray, reference: np.ndarray, ratio_db: float) -> np.ndarray:
    p = float(np.mean(reference ** 2)) / max(float(np.mean(x ** 2)), 1e-12)
    return (x * np.sqrt(p / 10 ** (ratio_db / 10))).astype(np.float32)


def make(codec2: Path, corpus: Path, out: Path, per_speaker: int = 4, seed: int = 0) -> None:
    """Write enrollments, mixtures and their clean targets, and ``check.json`` describing them."""
    import soundfile as sf

    rng = np.random.default_rng(seed)
    wav = codec2 / "usr/share/codec2/wav"
    speakers = {name: _read(wav / f) for name, f in TARGETS.items()}
    alsa = sorted(Path(ALSA).glob("*.wav"))
    alsa = [p for p in alsa if p.stem != "Noise"]
    speakers["alsa"] = np.concatenate([_read(p) for p in alsa])
    others = {f.split(".")[0]: _read(wav / f) for f in INTERFERERS_ONLY}
    noise = [p for p in sorted((corpus / "noise").rglob("*.wav"))]
    noise_meta = {}
    manifest = corpus / "manifests" / "noise.jsonl"
    for line in manifest.open():
        row = json.loads(line)
        noise_meta[row["path"]] = row
    noise = [p for p in noise if noise_meta.get(str(p.relative_to(corpus)), {}).get("split") == "test"]
    out.mkdir(parents=True, exist_ok=True)
    items: List[Dict[str, object]] = []
    for name, audio in speakers.items():
        enroll = audio[:SEGMENT] if name != "alsa" else np.concatenate([_read(p) for p in alsa[:2]])
        sf.write(str(out / "enroll_{}.wav".format(name)), enroll, RATE)
        rest = audio[len(enroll):]
        starts = [s for s in range(0, len(rest) - SEGMENT + 1, SEGMENT) if _active(rest[s:s + SEGMENT])]
        pool = {k: v for k, v in list(speakers.items()) + list(others.items()) if k != name}
        for i, start in enumerate(starts[:per_speaker]):
            target = rest[start:start + SEGMENT]
            other_name = sorted(pool)[int(rng.integers(len(pool)))]
            other = pool[other_name]
            if len(other) < SEGMENT:
                other = np.pad(other, (0, SEGMENT - len(other)))
            offset = int(rng.integers(0, len(other) - SEGMENT + 1))
            other = other[offset:offset + SEGMENT]
            clip = _read(noise[int(rng.integers(len(noise)))])
            clip = np.resize(clip, SEGMENT)
            base = "{}_{}".format(name, i)
            sf.write(str(out / (base + "_target.wav")), target, RATE, subtype="FLOAT")
            mixtures = {"alone": target.copy(), "sir_m5": target + _scale(other, target, -5.0), "sir_0": target + _scale(other, target, 0.0),
                        "sir_p5": target + _scale(other, target, 5.0), "noise_m5": target + _scale(clip, target, -5.0),
                        "absent": _scale(other, target, 0.0)}
            for condition, mix in mixtures.items():
                peak = float(np.max(np.abs(mix)))
                mix = mix * (0.9 / peak if peak > 0.9 else 1.0)
                sf.write(str(out / "{}_{}.wav".format(base, condition)), mix.astype(np.float32), RATE, subtype="FLOAT")
                items.append({"speaker": name, "file": "{}_{}.wav".format(base, condition), "condition": condition,
                              "target": base + "_target.wav", "interferer": other_name})
    (out / "check.json").write_text(json.dumps({"items": items, "speakers": sorted(speakers)}, indent=1))
    print("{} mixtures of {} target speakers in {}".format(len(items), len(speakers), out))


def enroll(check: Path, export: Path, corpus: Path = None) -> None:
    """Enroll every target speaker (and, with ``corpus``, every test-split speaker) into ``EXPORT/speakers``."""
    from emotrt.export.enroll import enroll_speaker
    from emotrt.runtime.errors import AudioError

    for name in json.loads((check / "check.json").read_text())["speakers"]:
        try:
            enroll_speaker(export / "speakers", name, check / "enroll_{}.wav".format(name), export / "enroll.onnx",
                           replace=True, min_seconds=1.0)
        except AudioError as exc:  # `emotrt enroll` refuses it too: `score` leaves the speaker out and says so
            print("not enrolled: {}".format(exc))
    if corpus is not None:
        for name, path in _test_enrollments(corpus).items():
            enroll_speaker(export / "speakers", name, path, export / "enroll.onnx", replace=True, min_seconds=1.0)


def _test_enrollments(corpus: Path) -> Dict[str, Path]:
    rows = [json.loads(line) for line in (corpus / "manifests" / "enroll.jsonl").open()]
    test = {json.loads(line)["speaker"] for line in (corpus / "manifests" / "test.jsonl").open()}
    out: Dict[str, Path] = {}
    for row in rows:
        if row["speaker"] in test:
            out.setdefault(row["speaker"], corpus / row["path"])
    return out


def absent(corpus: Path, bundle: Path, pairs: int = 30, per_speaker: int = 2, tse: str = "auto", seed: int = 0) -> Dict[str, float]:
    """Share of windows reported as the enrolled speaker's speech (an emotion given) when another test
    speaker talks alone (``pairs`` random ordered pairs), and when the enrolled speaker talks alone.

    Clean test-split utterances, the same speaker's enrollment as ``emotrt eval`` uses, VAD included.
    """
    import soundfile as sf

    from emotrt.runtime.offline import evaluate_offline
    from emotrt.runtime.pipeline import Pipeline, PipelineConfig

    rng = np.random.default_rng(seed)
    utts: Dict[str, List[Path]] = {}
    for line in (corpus / "manifests" / "test.jsonl").open():
        row = json.loads(line)
        utts.setdefault(row["speaker"], []).append(corpus / row["path"])
    names = sorted(utts)
    chosen = set()
    while len(chosen) < min(pairs, len(names) * (len(names) - 1)):
        a, b = rng.choice(len(names), 2, replace=False)
        chosen.add((names[a], names[b]))
    other, own = [], []
    with Pipeline.from_bundle(bundle, backend="onnxruntime", config=PipelineConfig(tse=tse)) as pipeline:
        env = "quiet" if "quiet" in pipeline.environments else pipeline.environments.names()[0]

        def reported(path: Path, speaker: str) -> List[bool]:
            audio, rate = sf.read(str(path), dtype="float32")
            return [r.emotion is not None for r in evaluate_offline(pipeline, rate, audio, speaker, env)]

        for a, b in sorted(chosen):
            for path in utts[b][:per_speaker]:
                other += reported(path, a)
        for a in sorted({a for a, _ in chosen}):
            for path in utts[a][:per_speaker]:
                own += reported(path, a)
    out = {"pairs": len(chosen), "tse": pipeline.tse_mode, "other_windows": len(other),
           "other_reported": float(np.mean(other)), "own_windows": len(own), "own_reported": float(np.mean(own))}
    print(json.dumps(out))
    return out


def _si_sdr(estimate: np.ndarray, reference: np.ndarray) -> float:
    estimate, reference = estimate.astype(np.float64), reference.astype(np.float64)
    alpha = np.dot(estimate, reference) / max(np.dot(reference, reference), 1e-12)
    target = alpha * reference
    return float(10 * np.log10(max(np.dot(target, target), 1e-12) / max(np.sum((target - estimate) ** 2), 1e-12)))


def score(check: Path, bundle: Path, tse: str = "auto") -> Dict[str, Dict[str, float]]:
    """SI-SDRi (raw and gated) per condition and the gate's window decisions, through the bundle."""
    import soundfile as sf

    from emotrt.runtime.offline import evaluate_offline, gated_signal
    from emotrt.runtime.pipeline import Pipeline, PipelineConfig

    data = json.loads((check / "check.json").read_text())
    rows: Dict[str, Dict[str, List[float]]] = {}
    with Pipeline.from_bundle(bundle, backend="onnxruntime", config=PipelineConfig(tse=tse)) as pipeline:
        environment = pipeline.environments.names()[0]
        missing = sorted({item["speaker"] for item in data["items"]} - set(pipeline.speakers.names()))
        if missing:
            print("left out (not enrolled): {}".format(", ".join(missing)), file=sys.stderr)
        for item in data["items"]:
            if item["speaker"] in missing:
                continue
            mix, _ = sf.read(str(check / item["file"]), dtype="float32")
            target, _ = sf.read(str(check / item["target"]), dtype="float32")
            row = rows.setdefault(item["condition"], {})
            results = evaluate_offline(pipeline, RATE, mix, item["speaker"], environment)
            reported = [r.emotion is not None for r in results]
            row.setdefault("reported", []).append(float(np.mean(reported)) if reported else 0.0)
            for r in results:
                if r.tse:
                    row.setdefault(r.tse, []).append(1.0)
                row.setdefault("windows", []).append(1.0)
            if item["condition"] in ("absent", "alone"):
                continue
            raw = gated_signal(pipeline, RATE, mix, item["speaker"], gate=False)
            fed = gated_signal(pipeline, RATE, mix, item["speaker"])
            baseline = _si_sdr(mix, target)
            row.setdefault("si_sdri_raw", []).append(_si_sdr(raw, target) - baseline)
            row.setdefault("si_sdri_gated", []).append(_si_sdr(fed, target) - baseline if np.any(fed) else float("nan"))
            row.setdefault("si_sdr_mixture", []).append(baseline)
    summary = {}
    for condition, row in rows.items():
        windows = len(row.pop("windows", []))
        counts = {k: len(row.pop(k, [])) / max(windows, 1) for k in ("used", "blend", "bypassed")}
        summary[condition] = dict({k: float(np.nanmean(v)) for k, v in row.items()}, n=len(row["reported"]), **counts)
    print(json.dumps({"bundle": str(bundle), "tse": tse, "conditions": summary}, indent=1))
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    m = sub.add_parser("make")
    m.add_argument("--codec2", type=Path, required=True)
    m.add_argument("--corpus", type=Path, required=True)
    m.add_argument("--out", type=Path, required=True)
    e = sub.add_parser("enroll")
    e.add_argument("--check", type=Path, required=True)
    e.add_argument("--export", type=Path, required=True)
    e.add_argument("--corpus", type=Path, default=None)
    a = sub.add_parser("absent")
    a.add_argument("--corpus", type=Path, required=True)
    a.add_argument("--bundle", type=Path, required=True)
    a.add_argument("--pairs", type=int, default=30)
    a.add_argument("--tse", default="auto")
    a.add_argument("--seed", type=int, default=0, help="which random ordered pairs (the sample moves the share by ±3 points)")
    s = sub.add_parser("score")
    s.add_argument("--check", type=Path, required=True)
    s.add_argument("--bundle", type=Path, required=True)
    s.add_argument("--tse", default="auto")
    args = parser.parse_args()
    if args.command == "make":
        make(args.codec2, args.corpus, args.out)
    elif args.command == "enroll":
        enroll(args.check, args.export, args.corpus)
    elif args.command == "absent":
        absent(args.corpus, args.bundle, args.pairs, tse=args.tse, seed=args.seed)
    else:
        score(args.check, args.bundle, args.tse)


if __name__ == "__main__":
    main()
