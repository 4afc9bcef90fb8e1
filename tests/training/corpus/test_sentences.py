"""The sentence grammar gives distinct sentences and refuses impossible counts."""
import numpy as np
import pytest

from emotrt.runtime.errors import ConfigError
from emotrt.training.corpus.sentences import make_sentences


def test_sentences_are_distinct_and_seeded():
    sentences = make_sentences(3000, np.random.default_rng(0))
    assert len(set(sentences)) == 3000 and all(s[0].isupper() and s.endswith(".") for s in sentences)
    assert make_sentences(5, np.random.default_rng(2)) == make_sentences(5, np.random.default_rng(2))


def test_too_many_sentences_is_a_config_error():
    with pytest.raises(ConfigError, match="at most 43875"):
        make_sentences(50000, np.random.default_rng(0))
