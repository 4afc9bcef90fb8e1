"""Shared training fixtures: a harmonic "voice" mixture source small enough for a few CPU steps, a tiny
synthetic corpus, and tiny transformers backbones saved with ``save_pretrained`` (nothing from a hub)."""
from typing import Dict, List

import numpy as np
import pytest


class ToneSpeakers:
    """Speakers as harmonic series with their own pitch and spectral tilt; a real MixtureSource, no corpus."""

    def __init__(self, n_speakers: int = 6, samples: int = 1600, enroll: int = 1600, rate: int = 16000) -> None:
        self.n_speakers, self.samples, self.enroll, self.rate = n_speakers, samples, enroll, rate
        self.f0 = np.linspace(110.0, 330.0, n_speakers)
        self.tilt = np.linspace(0.4, 0.9, n_speakers)

    def voice(self, rng: np.random.Generator, speaker: int, length: int) -> np.ndarray:
        t = np.arange(length) / self.rate
        f0 = self.f0[speaker] * (1 + 0.03 * np.sin(2 * np.pi * rng.uniform(2, 5) * t + rng.uniform(0, 6)))
        phase = 2 * np.pi * np.cumsum(f0) / self.rate
        wave = sum(self.tilt[speaker] ** h * np.sin(h * phase) for h in range(1, 6))
        envelope = 0.5 + 0.5 * np.sin(2 * np.pi * rng.uniform(1, 3) * t + rng.uniform(0, 6)) ** 2
        return (0.3 * wave * envelope).astype(np.float32)

    def sample(self, rng: np.random.Generator, batch: int) -> Dict[str, np.ndarray]:
        target = rng.integers(0, self.n_speakers, batch)
        other = (target + rng.integers(1, self.n_speakers, batch)) % self.n_speakers
        s = np.stack([self.voice(rng, int(k), self.samples) for k in target])
        i = np.stack([self.voice(rng, int(k), self.samples) for k in other])
        e = np.stack([self.voice(rng, int(k), self.enroll) for k in target])
        return {"mixture": s + i, "target": s, "enrollment": e, "speaker": target.astype(np.int64)}

    def valid_set(self) -> List[Dict[str, np.ndarray]]:
        rng = np.random.default_rng(99)
        return [{k: v for k, v in self.sample(rng, 4).items() if k != "speaker"}]


@pytest.fixture(scope="session")
def tone_speakers() -> ToneSpeakers:
    return ToneSpeakers()

# Tiny transformers backbones saved with ``save_pretrained`` to temp dirs (nothing from a hub).

VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "this", "speech", "is", "recorded", "in", "a", "busy",
         "cafe", ".", "car", "street"]


@pytest.fixture(scope="session")
def tiny_hf(tmp_path_factory):
    """Directories of tiny random wavlm, whisper, bert and clap models with a word-piece tokenizer."""
    from transformers import (BertConfig, BertModel, BertTokenizerFast, ClapConfig, ClapModel, WavLMConfig,
                              WavLMModel, WhisperConfig, WhisperModel)

    root = tmp_path_factory.mktemp("hf")
    (root / "vocab.txt").write_text("\n".join(VOCAB))
    tokenizer = BertTokenizerFast(vocab_file=str(root / "vocab.txt"))
    WavLMModel(WavLMConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                           conv_dim=(16, 16), conv_stride=(5, 4), conv_kernel=(10, 8), num_conv_pos_embeddings=16,
                           num_conv_pos_embedding_groups=2)).save_pretrained(root / "wavlm")
    WhisperModel(WhisperConfig(d_model=32, encoder_layers=2, decoder_layers=1, encoder_attention_heads=2,
                               decoder_attention_heads=2, encoder_ffn_dim=64, decoder_ffn_dim=64, num_mel_bins=16,
                               max_source_positions=200, vocab_size=100, max_target_positions=10, pad_token_id=0,
                               bos_token_id=1, eos_token_id=2, decoder_start_token_id=1, begin_suppress_tokens=None,
                               suppress_tokens=None)).save_pretrained(root / "whisper")
    BertModel(BertConfig(vocab_size=len(VOCAB), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                         intermediate_size=32)).save_pretrained(root / "bert")
    tokenizer.save_pretrained(root / "bert")
    clap = ClapConfig(
        text_config=dict(vocab_size=len(VOCAB), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                         intermediate_size=32, max_position_embeddings=40, pad_token_id=0),
        audio_config=dict(depths=[1, 1], num_attention_heads=[1, 1], hidden_size=16, patch_embeds_hidden_size=8,
                          spec_size=64, num_mel_bins=16, window_size=4, patch_stride=(4, 4), patch_size=4),
        projection_dim=12)
    ClapModel(clap).save_pretrained(root / "clap")
    tokenizer.save_pretrained(root / "clap")
    return root


@pytest.fixture(scope="session")
def ser_corpus(tmp_path_factory):
    """A tiny synthetic corpus (espeak-ng speech, numpy noise, stored test sets) for SER tests."""
    from emotrt.training.corpus.synth import SynthConfig, synthesise_corpus

    root = tmp_path_factory.mktemp("ser_corpus") / "synth"
    config = SynthConfig(train_speakers=4, valid_speakers=2, test_speakers=4, per_style_train=1, per_style_test=1,
                         enroll_per_speaker=1, babble_talkers=2, noise_clips=(1, 1, 1), unseen_clips=1,
                         noise_seconds=1.0, testset_size=4)
    synthesise_corpus(root, seed=3, workers=1, config=config)
    return root


@pytest.fixture(scope="session")
def wordllama():
    """The offline wordllama text encoder, loaded once."""
    from emotrt.training.text import load_text_encoder

    return load_text_encoder("wordllama")


TINY_SER = dict(d_model=32, heads=2, layers=1, ff_dim=64, window_samples=16000, dropout=0.0)


@pytest.fixture(scope="session")
def ser_task(ser_corpus, wordllama):
    """An SER task over the tiny corpus with a tiny model."""
    from emotrt.training.ser import SERConfig
    from emotrt.training.ser_task import SERDataConfig, SERTask

    return SERTask(SERConfig(**TINY_SER), SERDataConfig(corpus=str(ser_corpus), batch_size=8, valid_size=8),
                   text_encoder=wordllama)


@pytest.fixture(scope="session")
def synth_corpus(tmp_path_factory):
    """A tiny real synthetic corpus (espeak-ng speakers, noise, manifests) with two valid speakers."""
    from emotrt.training.corpus.synth import SynthConfig, synthesise_corpus

    from tests.training.corpus.conftest import TINY

    root = tmp_path_factory.mktemp("tse_corpus") / "synth"
    synthesise_corpus(root, seed=5, workers=2, config=SynthConfig(**dict(TINY, valid_speakers=2)))
    return root
