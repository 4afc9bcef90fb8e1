"""Loaders of real corpora over local copies (REFERENCE.md "Corpus layouts").

Each loader checks the documented layout, then lists :class:`Source` records (file, speaker,
gender, split, text, harmonised emotion, arousal/valence/dominance on 1-5, or noise
environment); :func:`emotrt.training.corpus.prepare.prepare_corpus` resamples them to 16 kHz
and writes the manifest.
"""
from __future__ import annotations

from typing import Callable, Dict, List, Tuple

from .common import Source
from .emotion import load_crema_d, load_esd, load_iemocap, load_msp_podcast, load_ravdess, load_savee, load_tess
from .noise import load_demand, load_esc50, load_musan, load_wham
from .speech import load_librispeech

#: name -> (loader, kind): kind "emotion" (labelled speech), "speech" (TSE sources) or "noise".
LOADERS: Dict[str, Tuple[Callable[..., List[Source]], str]] = {
    "iemocap": (load_iemocap, "emotion"),
    "msp-podcast": (load_msp_podcast, "emotion"),
    "crema-d": (load_crema_d, "emotion"),
    "ravdess": (load_ravdess, "emotion"),
    "esd": (load_esd, "emotion"),
    "savee": (load_savee, "emotion"),
    "tess": (load_tess, "emotion"),
    "librispeech": (load_librispeech, "speech"),
    "musan": (load_musan, "noise"),
    "demand": (load_demand, "noise"),
    "esc-50": (load_esc50, "noise"),
    "wham": (load_wham, "noise"),
}

__all__ = ["LOADERS", "Source"]
