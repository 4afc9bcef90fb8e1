"""Real-corpus loaders over tiny trees built in each documented layout (REFERENCE.md "Corpus layouts")."""
import json

import numpy as np
import pytest
import soundfile as sf

from emotrt.runtime.errors import ConfigError, CorpusError
from emotrt.training.corpus import load_manifest
from emotrt.training.corpus.loaders import LOADERS
from emotrt.training.corpus.prepare import prepare_corpus


def tone(path, rate=16000, seconds=0.25, channels=1, fmt=None):
    """A short tone file, so resampling and channel mixing have something to do."""
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(rate * seconds)) / rate
    x = 0.3 * np.sin(2 * np.pi * 440 * t)
    sf.write(str(path), np.stack([x] * channels, axis=1) if channels > 1 else x, rate, format=fmt)


def build_iemocap(root):
    lines = []
    for session, utts in ((1, ("Ses01F_impro01_F000", "Ses01F_impro01_M001", "Ses01F_impro01_F002")),
                          (5, ("Ses05M_script01_M000", "Ses05M_script01_F001"))):
        dialog = utts[0].rsplit("_", 1)[0]
        labels = ["% header line", ""]
        for utt, emo in zip(utts, ("exc", "ang", "fru")):
            tone(root / "Session{}/sentences/wav/{}/{}.wav".format(session, dialog, utt))
            labels.append("[6.2 - 8.2]\t{}\t{}\t[2.5000, 3.5000, 4.0000]".format(utt, emo))
        (root / "Session{}/dialog/EmoEvaluation".format(session)).mkdir(parents=True)
        (root / "Session{}/dialog/EmoEvaluation/{}.txt".format(session, dialog)).write_text("\n".join(labels))
        lines.append(session)
    (root / "Session1/dialog/transcriptions").mkdir(parents=True)
    (root / "Session1/dialog/transcriptions/Ses01F_impro01.txt").write_text("Ses01F_impro01_F000 [6.2-8.2]: Excuse me.\n")


def build_msp(root):
    rows = ["FileName,EmoClass,EmoAct,EmoVal,EmoDom,SpkrID,Gender,Split_Set",
            "MSP-PODCAST_0001_0001.wav,H,7.0,4.0,1.0,127,Female,Train",
            "MSP-PODCAST_0001_0002.wav,S,1.0,2.5,3.0,Unknown,Unknown,Development",
            "MSP-PODCAST_0002_0001.wav,A,5.5,1.5,6.0,3,Male,Test1",
            "MSP-PODCAST_0002_0002.wav,C,4.0,4.0,4.0,3,Male,Test2"]
    for row in rows[1:]:
        tone(root / "Audios" / row.split(",")[0])
    (root / "Labels").mkdir()
    (root / "Labels/labels_consensus.csv").write_text("\n".join(rows) + "\n")


def build_crema(root):
    for name in ("1002_DFA_ANG_XX", "1002_IEO_DIS_HI", "1010_TIE_HAP_LO", "1021_IWW_SAD_MD", "1011_ITS_NEU_XX"):
        tone(root / "AudioWAV" / (name + ".wav"))
    (root / "VideoDemographics.csv").write_text("ActorID,Age,Sex,Race,Ethnicity\n1002,51,Male,Caucasian,Not Hispanic\n"
                                               "1010,42,Female,Caucasian,Not Hispanic\n1021,30,Male,Asian,Not Hispanic\n")


def build_ravdess(root):
    for name in ("03-01-01-01-01-01-01", "03-01-02-01-02-01-02", "03-01-05-02-01-01-22", "03-02-03-01-01-01-01",
                 "03-01-08-01-01-01-19"):
        tone(root / "Actor_{}".format(name[-2:]) / (name + ".wav"), rate=48000)


def build_esd(root):
    for spk, emotion, folder, n in (("0011", "Angry", "train", 351), ("0011", "Happy", "evaluation", 721),
                                    ("0012", "Sad", "test", 1071), ("0001", "Neutral", "train", 1)):
        tone(root / spk / emotion / folder / "{}_{:06d}.wav".format(spk, n))
    (root / "0011/0011.txt").write_text("0011_000351\tThe nine the eggs.\tAngry\n")


def build_savee(root):
    for spk, name in (("DC", "a01"), ("DC", "sa03"), ("JK", "su15"), ("KL", "n30"), ("KL", "d02"), ("KL", "info")):
        tone(root / "AudioData" / spk / (name + ".wav"), rate=44100)


def build_tess(root):
    for folder, name in (("OAF_angry", "OAF_back_angry"), ("OAF_Pleasant_surprise", "OAF_bath_ps"),
                         ("YAF_sad", "YAF_dog_sad"), ("YAF_pleasant_surprised", "YAF_dog_ps")):
        tone(root / "TESS Toronto emotional speech set data" / folder / (name + ".wav"), rate=24414)


def build_librispeech(root):
    for subset, spk, chapter in (("train-clean-100", "19", "198"), ("dev-clean", "84", "121123"), ("test-clean", "61", "70968")):
        folder = root / subset / spk / chapter
        tone(folder / "{}-{}-0000.flac".format(spk, chapter), fmt="FLAC")
        (folder / "{}-{}.trans.txt".format(spk, chapter)).write_text("{}-{}-0000 HELLO WORLD\n".format(spk, chapter))
    (root / "SPEAKERS.TXT").write_text("; ID |SEX| SUBSET |MINUTES| NAME\n19 | F | train-clean-100 | 25.19 | Kara\n"
                                      "84 | F | dev-clean | 8.02 | Christie\n61 | M | test-clean | 8.0 | John\n")


def build_musan(root):
    tone(root / "musan/noise/free-sound/noise-free-sound-0000.wav")
    tone(root / "musan/music/fma/music-fma-0000.wav")
    tone(root / "musan/speech/librivox/speech-librivox-0000.wav")


def build_demand(root):
    for env in ("DKITCHEN", "PCAFETER", "TCAR"):
        tone(root / env / "ch01.wav")
        tone(root / env / "ch02.wav")


def build_esc50(root):
    rows = ["filename,fold,target,category,esc10,src_file,take", "1-100032-A-0.wav,1,0,dog,True,100032,A",
            "5-9032-A-0.wav,5,1,rain,False,9032,A", "4-1234-A-0.wav,4,2,crying_baby,True,1234,A"]
    for row in rows[1:]:
        tone(root / "audio" / row.split(",")[0], rate=44100)
    (root / "meta").mkdir()
    (root / "meta/esc50.csv").write_text("\n".join(rows) + "\n")


def build_wham(root):
    for folder in ("tr", "cv", "tt"):
        tone(root / "wham_noise" / folder / "40na010x_1.9857_01xo031a_-1.9857.wav", channels=2)


BUILDERS = {"iemocap": build_iemocap, "msp-podcast": build_msp, "crema-d": build_crema, "ravdess": build_ravdess,
            "esd": build_esd, "savee": build_savee, "tess": build_tess, "librispeech": build_librispeech, "musan": build_musan, "demand": build_demand,
            "esc-50": build_esc50, "wham": build_wham}


def prepared(tmp_path, name, **kwargs):
    src = tmp_path / "src"
    BUILDERS[name](src)
    out = tmp_path / "out"
    stats = prepare_corpus(name, src, out, workers=1, **kwargs)
    manifests = {p.stem: load_manifest(p) for p in (out / "manifests").glob("*.jsonl")}
    return out, stats, {k: {u.id: u for u in v} for k, v in manifests.items()}


def test_every_loader_has_a_tree_builder():
    assert set(BUILDERS) == set(LOADERS)


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_every_corpus_prepares_to_valid_16k_manifests(name, tmp_path, validate_manifest):
    out, stats, manifests = prepared(tmp_path, name, classes="all")
    total = 0
    for path in (out / "manifests").glob("*.jsonl"):
        total += validate_manifest(path)
    assert total > 0 and json.loads((out / "corpus.json").read_text())["corpus"] == name
    first = next(u for m in manifests.values() for u in m.values())
    info = sf.info(str(first.file))
    assert (info.samplerate, info.channels) == (16000, 1) and info.duration == pytest.approx(0.25, abs=2e-3)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_iemocap_labels_genders_folds_and_avd(tmp_path):
    _, _, m = prepared(tmp_path, "iemocap", classes="all")
    train, test = m["train"], m["test"]
    f0 = train["iemocap_Ses01F_impro01_F000"]
    assert (f0.emotion, f0.gender, f0.speaker, f0.text) == ("happy", "f", "iemocap_Ses01F", "Excuse me.")
    assert (f0.arousal, f0.valence, f0.dominance) == (3.5, 2.5, 4.0)
    assert train["iemocap_Ses01F_impro01_M001"].gender == "m" and train["iemocap_Ses01F_impro01_M001"].emotion == "angry"
    assert set(test) == {"iemocap_Ses05M_script01_M000", "iemocap_Ses05M_script01_F001"}
    assert "iemocap_Ses01F_impro01_F002" in train and train["iemocap_Ses01F_impro01_F002"].emotion == "frustrated"


def test_four_class_default_drops_others_and_drop_neutral(tmp_path):
    _, stats, m = prepared(tmp_path, "iemocap")
    assert "iemocap_Ses01F_impro01_F002" not in m["train"] and stats["utterances"]["train"] == 2
    _, _, m = prepared(tmp_path / "b", "crema-d", drop_neutral=True)
    assert all(u.emotion in ("happy", "angry", "sad") for split in m.values() for u in split.values())


def test_msp_podcast_rescales_attributes_and_maps_splits(tmp_path):
    _, _, m = prepared(tmp_path, "msp-podcast", classes="all")
    happy = m["train"]["msp_MSP-PODCAST_0001_0001"]
    assert (happy.emotion, happy.gender, happy.speaker) == ("happy", "f", "msp_127")
    assert (happy.arousal, happy.valence, happy.dominance) == (5.0, 3.0, 1.0)
    assert m["valid"]["msp_MSP-PODCAST_0001_0002"].speaker is None
    assert set(m["test"]) == {"msp_MSP-PODCAST_0002_0001", "msp_MSP-PODCAST_0002_0002"}
    assert m["test"]["msp_MSP-PODCAST_0002_0002"].emotion == "contempt"


def test_crema_d_ravdess_esd_speakers_genders_splits(tmp_path):
    _, _, crema = prepared(tmp_path / "c", "crema-d", classes="all")
    assert crema["train"]["crema_1002_DFA_ANG_XX"].gender == "m" and crema["train"]["crema_1002_DFA_ANG_XX"].text == "Don't forget a jacket."
    assert set(crema["test"]) == {"crema_1010_TIE_HAP_LO"} and crema["test"]["crema_1010_TIE_HAP_LO"].gender == "f"
    assert set(crema["valid"]) == {"crema_1021_IWW_SAD_MD", "crema_1011_ITS_NEU_XX"}
    _, _, rav = prepared(tmp_path / "r", "ravdess", classes="all")
    assert rav["train"]["ravdess_03-01-02-01-02-01-02"].emotion == "neutral"  # calm joins neutral
    assert rav["train"]["ravdess_03-01-01-01-01-01-01"].gender == "m"
    assert rav["test"]["ravdess_03-01-05-02-01-01-22"].gender == "f"
    assert rav["valid"]["ravdess_03-01-08-01-01-01-19"].emotion == "surprise"
    assert "ravdess_03-02-03-01-01-01-01" not in rav["train"]  # song
    _, _, esd = prepared(tmp_path / "e", "esd", classes="all")
    assert esd["train"]["esd_0011_000351"].text == "The nine the eggs." and esd["train"]["esd_0011_000351"].emotion == "angry"
    assert set(esd["valid"]) == {"esd_0011_000721"} and set(esd["test"]) == {"esd_0012_001071"}


def test_savee_and_tess_emotions_speakers_splits(tmp_path):
    _, _, savee = prepared(tmp_path / "s", "savee", classes="all")
    assert {u.emotion for u in savee["train"].values()} == {"angry", "sad"}
    assert savee["valid"]["savee_JK_su15"].emotion == "surprise"
    assert {k: u.emotion for k, u in savee["test"].items()} == {"savee_KL_n30": "neutral", "savee_KL_d02": "disgust"}
    assert {u.speaker for u in savee["train"].values()} == {"savee_DC"} and savee["test"]["savee_KL_n30"].gender == "m"
    _, _, tess = prepared(tmp_path / "t", "tess", classes="all")
    assert {k: u.emotion for k, u in tess["train"].items()} == {"tess_OAF_back_angry": "angry", "tess_OAF_bath_ps": "surprise"}
    dog = tess["test"]["tess_YAF_dog_sad"]
    assert (dog.speaker, dog.gender, dog.text) == ("tess_YAF", "f", "Say the word dog.")
    _, _, four = prepared(tmp_path / "f", "tess")
    assert set(four["train"]) == {"tess_OAF_back_angry"} and set(four["test"]) == {"tess_YAF_dog_sad"}


def test_librispeech_speakers_sex_and_subsets(tmp_path):
    _, stats, m = prepared(tmp_path, "librispeech")
    u = m["train"]["libri_19-198-0000"]
    assert (u.speaker, u.gender, u.text, u.emotion) == ("libri_19", "f", "hello world", None)
    assert m["test"]["libri_61-70968-0000"].gender == "m" and "libri_84-121123-0000" in m["valid"]


def test_noise_corpora_get_environments_with_descriptions(tmp_path):
    out, _, m = prepared(tmp_path / "d", "demand")
    envs = json.loads((out / "environments.json").read_text())
    assert {"demand_dkitchen", "demand_pcafeter", "demand_tcar", "quiet"} == set(envs)
    assert "This speech is recorded in a busy cafeteria." in envs["demand_pcafeter"]["descriptions"]
    assert len(m["noise"]) == 3
    _, _, esc = prepared(tmp_path / "e", "esc-50")
    splits = {u.environment: u.split for u in esc["noise"].values()}
    assert splits == {"esc50_dog": "train", "esc50_rain": "test", "esc50_crying_baby": "valid"}
    _, _, wham = prepared(tmp_path / "w", "wham")
    assert sorted(u.split for u in wham["noise"].values()) == ["test", "train", "valid"]


def test_missing_corpus_path_is_one_clear_error(tmp_path):
    with pytest.raises(CorpusError, match="iemocap corpus path not found") as info:
        prepare_corpus("iemocap", tmp_path / "nowhere", tmp_path / "out")
    assert "emotrt data prepare iemocap" in info.value.hint


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_wrong_layout_names_the_expected_one(name, tmp_path):
    (tmp_path / "src" / "random_folder").mkdir(parents=True)
    tone(tmp_path / "src" / "x.wav")
    with pytest.raises(CorpusError, match="is not a {} copy: expected .*; found random_folder/, x.wav".format(name)):
        prepare_corpus(name, tmp_path / "src", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_unknown_corpus_and_class_set_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="unknown corpus 'timit'"):
        prepare_corpus("timit", tmp_path, tmp_path / "out")
    build_crema(tmp_path / "src")
    with pytest.raises(ConfigError, match="classes='six'"):
        prepare_corpus("crema-d", tmp_path / "src", tmp_path / "out", classes="six")
