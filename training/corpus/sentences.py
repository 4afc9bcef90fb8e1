"""Distinct English sentences from a small seeded grammar, so no text corpus is needed."""
from __future__ import annotations

from typing import List

import numpy as np

from emotrt.runtime.errors import ConfigError

_SUBJECTS = ("the old fisherman", "my younger sister", "our new neighbour", "the tired driver", "a quiet student",
             "the head chef", "your best friend", "the night nurse", "a famous painter", "the local baker",
             "his grandfather", "the team captain", "a lost tourist", "the museum guide", "her business partner")
_VERBS = ("found", "painted", "carried", "repaired", "ordered", "forgot", "described", "borrowed", "delivered",
          "cleaned", "sold", "photographed", "remembered", "packed", "returned")
_OBJECTS = ("a wooden chair", "the blue bicycle", "three heavy boxes", "an old map", "the broken clock",
            "a basket of apples", "the silver key", "two train tickets", "a long letter", "the garden gate",
            "a warm blanket", "the kitchen radio", "a pair of boots", "the wedding cake", "a stack of books")
_TAILS = ("before the storm arrived", "near the harbour", "on a rainy morning", "after the meeting",
          "late last night", "at the weekend market", "without telling anyone", "in the small village",
          "just before lunch", "during the long summer", "by the river", "at the station", "")


def make_sentences(count: int, rng: np.random.Generator) -> List[str]:
    """``count`` different sentences in a random order (up to 43,875 exist; some end early to vary the length)."""
    sizes = (len(_SUBJECTS), len(_VERBS), len(_OBJECTS), len(_TAILS))
    total = int(np.prod(sizes))
    if count > total:
        raise ConfigError("asked for {} sentences; the grammar makes at most {}".format(count, total))
    picks = rng.choice(total, size=count, replace=False)
    sentences = []
    for k in picks:
        s, v, o, t = np.unravel_index(int(k), sizes)
        sentences.append(" ".join(w for w in (_SUBJECTS[s], _VERBS[v], _OBJECTS[o], _TAILS[t]) if w).capitalize() + ".")
    return sentences
