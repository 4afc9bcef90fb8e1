"""Noise corpora: MUSAN, DEMAND, ESC-50, WHAM!; each clip gets an environment and a description."""
from __future__ import annotations

from pathlib import Path
from typing import List

from .common import Source, corpus_dir, csv_rows, nonempty, stable_split, wrong_layout

MUSAN_LAYOUT = "musan/{noise,music,speech}/<source>/*.wav"
MUSAN_PHRASES = {"noise": "a place with assorted background noise", "music": "a room with music playing",
                 "speech": "a room where other people are talking"}


def load_musan(path: Path) -> List[Source]:
    """MUSAN: the environment is the category (noise, music, speech as babble); checksum split."""
    root = corpus_dir(path, "musan")
    if (root / "musan").is_dir():
        root = root / "musan"
    sources = [
        Source(file=wav, id="musan_" + wav.stem, split=stable_split(wav.name), environment="musan_" + category,
               description=MUSAN_PHRASES[category])
        for category in MUSAN_PHRASES for wav in sorted((root / category).glob("**/*.wav"))
    ]
    return nonempty(sources, root, "musan", MUSAN_LAYOUT)


DEMAND_LAYOUT = "<ENV>/ch01.wav (ENV such as DKITCHEN, PCAFETER, TCAR)"
DEMAND_PHRASES = {
    "DKITCHEN": "a kitchen", "DLIVING": "a living room", "DWASHING": "a laundry room with a washing machine",
    "NFIELD": "a sports field", "NPARK": "a city park", "NRIVER": "a place by a river", "OHALLWAY": "an office hallway",
    "OMEETING": "a meeting room", "OOFFICE": "an office", "PCAFETER": "a busy cafeteria", "PRESTO": "a restaurant",
    "PSTATION": "a train station", "SPSQUARE": "a public square", "STRAFFIC": "a busy street with traffic",
    "SCAFE": "a street cafe", "TBUS": "a bus", "TCAR": "a moving car", "TMETRO": "a metro train",
}
DEMAND_CATEGORIES = {"D": "a home", "N": "outdoors in nature", "O": "an office", "P": "a public place",
                     "S": "a street", "T": "a vehicle"}


def load_demand(path: Path) -> List[Source]:
    """DEMAND: channel 1 of each environment; the environment is the folder name."""
    root = corpus_dir(path, "demand")
    sources = []
    for wav in sorted(root.glob("*/ch01.wav")):
        env = wav.parent.name.upper()
        if env[0] not in DEMAND_CATEGORIES:
            continue
        sources.append(Source(file=wav, id="demand_" + env.lower(), split=stable_split(env),
                              environment="demand_" + env.lower(),
                              description=DEMAND_PHRASES.get(env, DEMAND_CATEGORIES[env[0]])))
    return nonempty(sources, root, "demand", DEMAND_LAYOUT)


ESC_LAYOUT = "audio/*.wav and meta/esc50.csv (filename, fold, target, category, ...)"
#: ESC-50's fold 5 is the test fold and fold 4 validation.
ESC_SPLITS = {"5": "test", "4": "valid"}


def load_esc50(path: Path) -> List[Source]:
    """ESC-50: the environment is the sound category; split by the official fold."""
    root = corpus_dir(path, "esc-50")
    meta = root / "meta" / "esc50.csv"
    if not meta.is_file() or not (root / "audio").is_dir():
        raise wrong_layout(root, "esc-50", ESC_LAYOUT)
    sources = []
    for row in csv_rows(meta):
        wav = root / "audio" / row["filename"]
        if wav.is_file():
            category = row["category"].strip()
            sources.append(Source(
                file=wav, id="esc50_" + wav.stem, split=ESC_SPLITS.get(row["fold"].strip(), "train"),
                environment="esc50_" + category, description="a place with the sound of " + category.replace("_", " "),
            ))
    return nonempty(sources, root, "esc-50", ESC_LAYOUT)


WHAM_LAYOUT = "wham_noise/{tr,cv,tt}/*.wav"
WHAM_SPLITS = {"tr": "train", "cv": "valid", "tt": "test"}


def load_wham(path: Path) -> List[Source]:
    """WHAM! noise (cafes, restaurants, bars): one environment, the official tr/cv/tt splits."""
    root = corpus_dir(path, "wham")
    if (root / "wham_noise").is_dir():
        root = root / "wham_noise"
    sources = [
        Source(file=wav, id="wham_{}_{}".format(folder, wav.stem), split=split, environment="wham_cafe",
               description="a busy cafe, restaurant or bar")
        for folder, split in WHAM_SPLITS.items() for wav in sorted((root / folder).glob("*.wav"))
    ]
    return nonempty(sources, root, "wham", WHAM_LAYOUT)
