"""Corpus statistics: hours, speakers, per-style and per-environment counts (printed by the CLI)."""
from __future__ import annotations

from collections import Counter
from typing import Any, Dict, List, Mapping

from .manifest import Utterance


def corpus_stats(
    manifests: Mapping[str, List[Utterance]], environments: Mapping[str, Mapping[str, Any]], testsets: Mapping[str, int]
) -> Dict[str, Any]:
    """Statistics of a corpus given its manifests by name, its environments and its test-set sizes."""
    speech = {k: v for k, v in manifests.items() if k != "noise"}
    noise = manifests.get("noise", [])
    envs: Dict[str, Dict[str, Any]] = {}
    for env_id, env in environments.items():
        clips = [c for c in noise if c.environment == env_id]
        envs[env_id] = {"split": env.get("split"), "descriptions": len(env.get("descriptions", [])),
                        "clips": len(clips), "seconds": round(sum(c.duration for c in clips), 1)}
    return {
        "utterances": {k: len(v) for k, v in manifests.items()},
        "hours": {k: round(sum(u.duration for u in v) / 3600, 3) for k, v in manifests.items()},
        "speakers": {k: dict(Counter(g for g in {u.speaker: u.gender for u in v}.values()), total=len({u.speaker for u in v}))
                     for k, v in speech.items()},
        "styles": {k: dict(sorted(Counter(u.emotion for u in v).items())) for k, v in speech.items()},
        "environments": envs,
        "testsets": dict(testsets),
        "speaker_ids": {k: sorted({u.speaker for u in v}) for k, v in speech.items() if k != "enroll"},
    }
