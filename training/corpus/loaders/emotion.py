"""Emotional speech corpora: IEMOCAP, MSP-Podcast, CREMA-D, RAVDESS, ESD, SAVEE, TESS."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Dict, List, Optional

from ..labels import harmonise, rescale_avd
from .common import Source, corpus_dir, csv_rows, nonempty, wrong_layout

IEMOCAP_LAYOUT = "Session{1..5}/sentences/wav/<dialog>/<utt>.wav with Session{n}/dialog/EmoEvaluation/<dialog>.txt"
#: IEMOCAP folds are sessions: Session 5 is the test fold and Session 4 validation by default.
IEMOCAP_SPLITS = {1: "train", 2: "train", 3: "train", 4: "valid", 5: "test"}
_IEMOCAP_LINE = re.compile(r"^\[[\d.]+ - [\d.]+\]\t(\S+)\t(\S+)\t\[([\d.]+), ([\d.]+), ([\d.]+)\]")


def _iemocap_texts(session: Path) -> Dict[str, str]:
    texts = {}
    for trans in (session / "dialog" / "transcriptions").glob("*.txt"):
        for line in trans.read_text(errors="replace").splitlines():
            utt, _, rest = line.partition(" ")
            if ":" in rest:
                texts[utt] = rest.split(":", 1)[1].strip()
    return texts


def load_iemocap(path: Path) -> List[Source]:
    """IEMOCAP: labels from EmoEvaluation ([V, A, D] on 1-5), gender from the utterance id, fold = session."""
    root = corpus_dir(path, "iemocap")
    sessions = sorted(p for p in root.glob("Session[1-5]") if (p / "sentences" / "wav").is_dir())
    if not sessions:
        raise wrong_layout(root, "iemocap", IEMOCAP_LAYOUT)
    sources = []
    for session in sessions:
        number = int(session.name[-1])
        texts = _iemocap_texts(session)
        for evaluation in sorted((session / "dialog" / "EmoEvaluation").glob("*.txt")):
            for line in evaluation.read_text(errors="replace").splitlines():
                match = _IEMOCAP_LINE.match(line)
                if not match:
                    continue
                utt, emo, v, a, d = match.groups()
                wav = session / "sentences" / "wav" / utt.rsplit("_", 1)[0] / (utt + ".wav")
                if not wav.is_file():
                    continue
                gender = utt.rsplit("_", 1)[1][0].lower()  # Ses01F_impro01_F000: the talker of this turn
                sources.append(Source(
                    file=wav, id="iemocap_" + utt, split=IEMOCAP_SPLITS[number],
                    speaker="iemocap_{}{}".format(utt[:5], gender.upper()), gender=gender, text=texts.get(utt),
                    emotion=harmonise(emo), avd=(float(a), float(v), float(d)),
                ))
    return nonempty(sources, root, "iemocap", IEMOCAP_LAYOUT)


MSP_LAYOUT = "Audios/*.wav and Labels/labels_consensus.csv (FileName, EmoClass, EmoAct, EmoVal, EmoDom, SpkrID, Gender, Split_Set)"
MSP_SPLITS = {"train": "train", "development": "valid", "test1": "test", "test2": "test", "test3": "test"}


def load_msp_podcast(path: Path) -> List[Source]:
    """MSP-Podcast: consensus labels, attributes rescaled from 1-7 to 1-5, the official splits."""
    root = corpus_dir(path, "msp-podcast")
    labels = root / "Labels" / "labels_consensus.csv"
    if not labels.is_file() or not (root / "Audios").is_dir():
        raise wrong_layout(root, "msp-podcast", MSP_LAYOUT)
    sources = []
    for row in csv_rows(labels):
        split = MSP_SPLITS.get(row.get("Split_Set", "").strip().lower())
        wav = root / "Audios" / row["FileName"]
        if split is None or not wav.is_file():
            continue
        speaker = row.get("SpkrID", "").strip()
        gender = row.get("Gender", "").strip().lower()[:1]
        sources.append(Source(
            file=wav, id="msp_" + wav.stem, split=split,
            speaker=None if speaker.lower() in ("", "unknown") else "msp_" + speaker,
            gender=gender if gender in ("f", "m") else None, emotion=harmonise(row["EmoClass"]),
            avd=rescale_avd((float(row["EmoAct"]), float(row["EmoVal"]), float(row["EmoDom"])), 1.0, 7.0),
        ))
    return nonempty(sources, root, "msp-podcast", MSP_LAYOUT)


CREMA_LAYOUT = "AudioWAV/<actor>_<sentence>_<EMO>_<LEVEL>.wav (EMO one of ANG DIS FEA HAP NEU SAD)"
CREMA_EMOTIONS = {"ANG": "angry", "DIS": "disgust", "FEA": "fear", "HAP": "happy", "NEU": "neutral", "SAD": "sad"}
CREMA_SENTENCES = {
    "IEO": "It's eleven o'clock.", "TIE": "That is exactly what happened.", "IOM": "I'm on my way to the meeting.",
    "IWW": "I wonder what this is about.", "TAI": "The airplane is almost full.", "MTI": "Maybe tomorrow it will be cold.",
    "IWL": "I would like a new alarm clock.", "ITH": "I think I have a doctor's appointment.",
    "DFA": "Don't forget a jacket.", "ITS": "I think I've seen this before.", "TSI": "The surface is slick.",
    "WSI": "We'll stop in a couple of minutes.",
}


def _crema_genders(root: Path) -> Dict[str, str]:
    """Actor genders from VideoDemographics.csv (ActorID, ..., Sex) when the copy has it."""
    demo = root / "VideoDemographics.csv"
    if not demo.is_file():
        return {}
    return {row["ActorID"].strip(): row["Sex"].strip().lower()[:1] for row in csv_rows(demo)}


def _actor_split(number: int) -> str:
    """Speaker-disjoint split for corpora split by actor number: ..0 test, ..1 valid."""
    return "test" if number % 10 == 0 else "valid" if number % 10 == 1 else "train"


def load_crema_d(path: Path) -> List[Source]:
    """CREMA-D: emotion from the file name, genders from VideoDemographics.csv, split by actor."""
    root = corpus_dir(path, "crema-d")
    audio = root / "AudioWAV"
    if not audio.is_dir():
        raise wrong_layout(root, "crema-d", CREMA_LAYOUT)
    genders = _crema_genders(root)
    sources = []
    for wav in sorted(audio.glob("*.wav")):
        parts = wav.stem.split("_")
        if len(parts) != 4 or parts[2] not in CREMA_EMOTIONS or not parts[0].isdigit():
            continue
        actor = parts[0]
        sources.append(Source(
            file=wav, id="crema_" + wav.stem, split=_actor_split(int(actor)), speaker="crema_" + actor,
            gender=genders.get(actor), text=CREMA_SENTENCES.get(parts[1]), emotion=CREMA_EMOTIONS[parts[2]],
        ))
    return nonempty(sources, root, "crema-d", CREMA_LAYOUT)


RAVDESS_LAYOUT = "Actor_XX/MM-VV-EE-II-SS-RR-AA.wav"
RAVDESS_EMOTIONS = {1: "neutral", 2: "calm", 3: "happy", 4: "sad", 5: "angry", 6: "fearful", 7: "disgust", 8: "surprised"}
RAVDESS_STATEMENTS = {1: "Kids are talking by the door.", 2: "Dogs are sitting by the door."}
#: RAVDESS has 24 actors: 21-24 (two female, two male) are the test speakers, 19-20 validation.
RAVDESS_TEST, RAVDESS_VALID = (21, 22, 23, 24), (19, 20)


def load_ravdess(path: Path) -> List[Source]:
    """RAVDESS speech (not song): emotion from the name (calm joins neutral), odd actors male."""
    root = corpus_dir(path, "ravdess")
    sources = []
    for wav in sorted(root.glob("Actor_*/*.wav")):
        fields = wav.stem.split("-")
        if len(fields) != 7 or not all(f.isdigit() for f in fields):
            continue
        _, channel, emotion, _, statement, _, actor = (int(f) for f in fields)
        if channel != 1 or emotion not in RAVDESS_EMOTIONS:
            continue
        split = "test" if actor in RAVDESS_TEST else "valid" if actor in RAVDESS_VALID else "train"
        sources.append(Source(
            file=wav, id="ravdess_" + wav.stem, split=split, speaker="ravdess_{:02d}".format(actor),
            gender="m" if actor % 2 else "f", text=RAVDESS_STATEMENTS.get(statement),
            emotion=harmonise(RAVDESS_EMOTIONS[emotion]),
        ))
    return nonempty(sources, root, "ravdess", RAVDESS_LAYOUT)


ESD_LAYOUT = "<spk>/<Emotion>/[train|evaluation|test/]<spk>_<nnnnnn>.wav (English speakers 0011-0020)"
ESD_SPLITS = {"train": "train", "evaluation": "valid", "test": "test"}
ESD_ENGLISH = tuple("{:04d}".format(n) for n in range(11, 21))


def _esd_texts(speaker_dir: Path) -> Dict[str, str]:
    texts = {}
    transcript = speaker_dir / (speaker_dir.name + ".txt")
    if transcript.is_file():
        for line in transcript.read_text(encoding="utf-8", errors="replace").splitlines():
            fields = line.split("\t")
            if len(fields) >= 2:
                texts[fields[0].strip()] = fields[1].strip()
    return texts


def load_esd(path: Path, speakers: Optional[tuple] = ESD_ENGLISH) -> List[Source]:
    """ESD (English speakers by default): emotion from the folder, its own train/evaluation/test folders.

    ESD's files do not state speaker gender, so ``gender`` stays unset.
    """
    root = corpus_dir(path, "esd")
    sources = []
    for speaker_dir in sorted(p for p in root.iterdir() if p.is_dir() and p.name.isdigit()):
        if speakers is not None and speaker_dir.name not in speakers:
            continue
        texts = _esd_texts(speaker_dir)
        for wav in sorted(speaker_dir.glob("*/**/*.wav")):
            rel = wav.relative_to(speaker_dir).parts
            split = ESD_SPLITS.get(rel[1], "train") if len(rel) == 3 else "train"
            sources.append(Source(
                file=wav, id="esd_" + wav.stem, split=split, speaker="esd_" + speaker_dir.name,
                text=texts.get(wav.stem), emotion=harmonise(rel[0]),
            ))
    return nonempty(sources, root, "esd", ESD_LAYOUT)


SAVEE_LAYOUT = "[AudioData/]<DC|JE|JK|KL>/<emo><nn>.wav (emo one of a d f h n sa su)"
SAVEE_EMOTIONS = {"a": "angry", "d": "disgust", "f": "fear", "h": "happy", "n": "neutral", "sa": "sad", "su": "surprise"}
#: SAVEE has four male speakers: KL is the test speaker, JK validation.
SAVEE_SPLITS = {"DC": "train", "JE": "train", "JK": "valid", "KL": "test"}
_SAVEE_NAME = re.compile(r"^(sa|su|a|d|f|h|n)(\d+)$")


def load_savee(path: Path) -> List[Source]:
    """SAVEE (audio part): four male speakers, emotion from the file-name prefix, split by speaker."""
    root = corpus_dir(path, "savee")
    base = root / "AudioData" if (root / "AudioData").is_dir() else root
    sources = []
    for speaker, split in SAVEE_SPLITS.items():
        for wav in sorted((base / speaker).glob("*.wav")):
            match = _SAVEE_NAME.match(wav.stem)
            if not match:
                continue
            sources.append(Source(
                file=wav, id="savee_{}_{}".format(speaker, wav.stem), split=split, speaker="savee_" + speaker,
                gender="m", emotion=SAVEE_EMOTIONS[match.group(1)],
            ))
    return nonempty(sources, root, "savee", SAVEE_LAYOUT)


TESS_LAYOUT = "[<OAF|YAF>_<emotion>/]<OAF|YAF>_<word>_<emotion>.wav (emotion one of angry disgust fear happy neutral ps sad)"
TESS_EMOTIONS = {"angry": "angry", "disgust": "disgust", "fear": "fear", "happy": "happy", "neutral": "neutral",
                 "ps": "surprise", "sad": "sad"}
#: TESS has two female talkers (older and younger adult): the younger is the test speaker.
TESS_SPLITS = {"OAF": "train", "YAF": "test"}


def load_tess(path: Path) -> List[Source]:
    """TESS: "Say the word ..." by two actresses, emotion from the file name (ps = pleasant surprise).

    The emotion folders are spelled differently between copies, so only the file name is read;
    files directly under the root (the Dataverse zip) work too.
    """
    root = corpus_dir(path, "tess")
    sources = []
    for wav in sorted(root.rglob("*.wav")):
        parts = wav.stem.split("_")
        if len(parts) != 3 or parts[0].upper() not in TESS_SPLITS or parts[2].lower() not in TESS_EMOTIONS:
            continue
        speaker, word, emotion = parts[0].upper(), parts[1], parts[2].lower()
        sources.append(Source(
            file=wav, id="tess_{}_{}_{}".format(speaker, word, emotion), split=TESS_SPLITS[speaker],
            speaker="tess_" + speaker, gender="f", text="Say the word {}.".format(word), emotion=TESS_EMOTIONS[emotion],
        ))
    return nonempty(sources, root, "tess", TESS_LAYOUT)
