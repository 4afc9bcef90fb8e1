"""Corpus manifests (docs/contracts.md "Corpus"): JSONL, one :class:`Utterance` per line.

The JSON Schema of a line ships next to this module (``manifest.schema.json``) and the tests
validate every manifest the package writes against it with ``jsonschema``. At run time lines
are checked by :func:`check_line`, a few lines of code instead of ``jsonschema``, because
``jsonschema`` is a dev dependency only and the checker names the file, line and field.
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional

from emotrt.runtime.errors import CorpusError

from .labels import EMOTIONS
from emotrt.runtime.atomic import atomic_file

SCHEMA_PATH = Path(__file__).with_name("manifest.schema.json")
CORPUS_FILE = "corpus.json"
SPLITS = ("train", "valid", "test")
SNR_MODES = ("power", "tgeat")
GENDER_PAIRS = ("same", "different")


@dataclasses.dataclass(frozen=True)
class Utterance:
    """One manifest line: a clean utterance, a noise clip or a stored mixture.

    ``path`` is relative to the corpus root; :func:`load_manifest` sets ``root`` so that
    :attr:`file` is the absolute audio path.

    >>> u = Utterance(id="a", path="speech/s1/a.wav", sample_rate=16000, duration=1.5, corpus="synth", split="train")
    >>> u.to_json()["path"]
    'speech/s1/a.wav'
    """

    id: str
    path: str
    sample_rate: int
    duration: float
    corpus: str
    split: str
    speaker: Optional[str] = None
    gender: Optional[str] = None
    text: Optional[str] = None
    emotion: Optional[str] = None
    arousal: Optional[float] = None
    valence: Optional[float] = None
    dominance: Optional[float] = None
    target: Optional[str] = None
    interferer: Optional[str] = None
    noise: Optional[str] = None
    environment: Optional[str] = None
    snr_db: Optional[float] = None
    sir_db: Optional[float] = None
    snr_mode: Optional[str] = None
    gender_pair: Optional[str] = None
    augment: Optional[Dict[str, Any]] = dataclasses.field(default=None, hash=False)
    root: Optional[str] = dataclasses.field(default=None, compare=False, repr=False)

    @property
    def file(self) -> Path:
        """The absolute audio path (needs ``root``, set by :func:`load_manifest`)."""
        if self.root is None:
            raise CorpusError("utterance {!r} has no corpus root; load it with load_manifest()".format(self.id))
        return Path(self.root) / self.path

    def to_json(self) -> Dict[str, Any]:
        """The manifest line as a dict, without unset fields."""
        return {f.name: getattr(self, f.name) for f in _LINE_FIELDS if getattr(self, f.name) is not None}


_LINE_FIELDS = tuple(f for f in dataclasses.fields(Utterance) if f.name != "root")
_FIELD_NAMES = tuple(f.name for f in _LINE_FIELDS)
_REQUIRED = ("id", "path", "sample_rate", "duration", "corpus", "split")
_ENUMS = {"split": SPLITS, "gender": ("f", "m"), "emotion": EMOTIONS, "snr_mode": SNR_MODES, "gender_pair": GENDER_PAIRS}
_NUMBERS = ("duration", "arousal", "valence", "dominance", "snr_db", "sir_db")


def _augment_problems(value: Any) -> List[str]:
    if not isinstance(value, dict):
        return ["augment={!r}, expected an object".format(value)]
    missing = [k for k in ("method", "of", "seed") if k not in value]
    return ["augment lacks {}".format(", ".join(missing))] if missing else []


def check_line(line: Dict[str, Any]) -> List[str]:
    """Every problem of one manifest line against the schema (empty when valid)."""
    problems = ["missing field {!r}".format(k) for k in _REQUIRED if k not in line]
    problems += ["unknown field {!r}".format(k) for k in line if k not in _FIELD_NAMES]
    for key, value in line.items():
        if value is None or key not in _FIELD_NAMES:
            continue
        if key == "augment":
            problems += _augment_problems(value)
        elif key in _ENUMS and value not in _ENUMS[key]:
            problems.append("{}={!r}, expected one of {}".format(key, value, ", ".join(_ENUMS[key])))
        elif key == "sample_rate" and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
            problems.append("sample_rate={!r}, expected a positive integer".format(value))
        elif key in _NUMBERS and (not isinstance(value, (int, float)) or isinstance(value, bool)):
            problems.append("{}={!r}, expected a number".format(key, value))
        elif key in ("arousal", "valence", "dominance") and not 1 <= value <= 5:
            problems.append("{}={!r}, expected 1-5 (IEMOCAP scale)".format(key, value))
        elif key == "duration" and value <= 0:
            problems.append("duration={!r}, expected > 0".format(value))
        elif key not in _NUMBERS and key != "sample_rate" and not isinstance(value, str):
            problems.append("{}={!r}, expected a string".format(key, value))
    return problems


def corpus_root(manifest: Path) -> Path:
    """The corpus root of a manifest: the nearest ancestor holding corpus.json, else its own folder."""
    for parent in manifest.resolve().parents:
        if (parent / CORPUS_FILE).is_file():
            return parent
    return manifest.resolve().parent


def load_manifest(path: Any, root: Any = None) -> List[Utterance]:
    """Read a JSONL manifest into utterances whose ``file`` resolves against the corpus root."""
    path = Path(path)
    if not path.is_file():
        raise CorpusError(
            "manifest not found: {}".format(path),
            hint="make a corpus with `emotrt data synth --out DIR` or `emotrt data prepare <corpus> <path> --out DIR`",
        )
    base = str(Path(root).resolve() if root is not None else corpus_root(path))
    utterances = []
    with path.open(encoding="utf-8", errors="replace") as fh:  # bytes that are not UTF-8 fail as "not JSON", with the line
        for number, text in enumerate(fh, 1):
            if not text.strip():
                continue
            try:
                line = json.loads(text)
            except ValueError as exc:
                raise CorpusError("{}:{} is not JSON ({})".format(path, number, exc)) from None
            problems = check_line(line) if isinstance(line, dict) else ["expected a JSON object"]
            if problems:
                raise CorpusError(
                    "{}:{} is not a valid manifest line: {}".format(path, number, "; ".join(problems)),
                    hint="see training/corpus/manifest.schema.json for the fields",
                )
            utterances.append(Utterance(root=base, **line))
    return utterances


def write_manifest(path: Any, utterances: Iterable[Utterance]) -> Path:
    """Write utterances as JSONL atomically (temporary file renamed into place)."""
    path = Path(path)
    with atomic_file(path) as tmp, open(tmp, "w", encoding="utf-8") as fh:
        for utt in utterances:
            fh.write(json.dumps(utt.to_json(), ensure_ascii=False, sort_keys=True) + "\n")
    return path
