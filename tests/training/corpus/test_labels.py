"""Label harmonisation and the 1-5 attribute scale."""
import pytest

from emotrt.training.corpus.labels import FOUR_CLASS, harmonise, keep_label, rescale_avd


@pytest.mark.parametrize("raw, label", [("exc", "happy"), ("Hap", "happy"), ("calm", "neutral"), ("N", "neutral"),
                                        ("fearful", "fear"), ("Surprise", "surprise"), ("xxx", "other"), ("zzz", "other")])
def test_harmonise(raw, label):
    assert harmonise(raw) == label


def test_keep_label_and_drop_neutral():
    assert keep_label("sad", FOUR_CLASS) and not keep_label("fear", FOUR_CLASS) and not keep_label(None, FOUR_CLASS)
    assert not keep_label("neutral", FOUR_CLASS, drop_neutral=True)


def test_rescale_maps_ends_and_middle():
    assert rescale_avd((1.0, 7.0, 4.0), 1.0, 7.0) == (1.0, 5.0, 3.0)
