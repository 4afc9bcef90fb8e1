"""Audio in: microphones (sounddevice), WAV/FLAC files (soundfile), raw PCM on stdin.

Every source pushes mono float32 blocks at its own rate into a :class:`RingBuffer`; the
stream resamples. A microphone's PortAudio callback does nothing but downmix-copy into the
ring buffer, so a slow inference thread costs counted overruns, never a stalled device.
"""
from __future__ import annotations

import logging
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any, BinaryIO, List, Optional, Union

import numpy as np

from emotrt.runtime.errors import AudioError, DependencyError
from emotrt.runtime.resample import to_mono
from emotrt.runtime.ringbuffer import RingBuffer

log = logging.getLogger(__name__)

DeviceSpec = Union[None, int, str]
PCM_TYPES = {"s16le": "<i2", "s32le": "<i4", "f32le": "<f4"}


def import_sounddevice() -> Any:
    """sounddevice, or a clear error when it or the PortAudio library is missing."""
    try:
        import sounddevice
    except OSError as exc:  # sounddevice raises OSError("PortAudio library not found") at import
        raise DependencyError(
            "the PortAudio library is missing ({})".format(exc),
            hint="sudo apt-get install libportaudio2",
        ) from exc
    except ImportError as exc:
        raise DependencyError("sounddevice is not installed ({})".format(exc), hint="pip install 'emotrt[audio]'") from exc
    return sounddevice


@dataclass(frozen=True)
class AudioDevice:
    """One PortAudio capture device."""

    index: int
    name: str
    channels: int
    default_rate: int
    hostapi: str
    is_default: bool = False


def list_input_devices() -> List[AudioDevice]:
    """Every device with at least one input channel, the default input marked."""
    sd = import_sounddevice()
    try:
        default = sd.default.device[0]
        apis = sd.query_hostapis()
        devices = sd.query_devices()
    except sd.PortAudioError as exc:
        raise AudioError("PortAudio cannot list devices: {}".format(exc)) from exc
    if default is None or default < 0:
        try:
            default = int(sd.query_devices(kind="input")["index"])
        except (sd.PortAudioError, ValueError):
            default = -1
    return [
        AudioDevice(int(d["index"]), d["name"], int(d["max_input_channels"]), int(d["default_samplerate"]),
                    apis[d["hostapi"]]["name"], int(d["index"]) == default)
        for d in devices
        if d["max_input_channels"] > 0
    ]


_LIST_HINT = "run `emotrt audio-devices` to see the microphones"


def resolve_input_device(spec: DeviceSpec = None) -> AudioDevice:
    """The input device named by ``spec``: None (default), an index, or a case-insensitive name part."""
    devices = list_input_devices()
    if not devices:
        raise AudioError("no input device: PortAudio sees no microphone on this machine",
                         hint="plug one in or start PulseAudio/PipeWire; " + _LIST_HINT)
    if spec is None or spec == "":
        chosen = [d for d in devices if d.is_default] or devices[:1]
        return chosen[0]
    if isinstance(spec, int) or str(spec).isdigit():
        index = int(spec)
        for d in devices:
            if d.index == index:
                return d
        raise AudioError("no input device with index {} (inputs: {})".format(
            index, ", ".join("{}={}".format(d.index, d.name) for d in devices)), hint=_LIST_HINT)
    wanted = str(spec).lower()
    exact = [d for d in devices if d.name.lower() == wanted]
    matches = exact or [d for d in devices if wanted in d.name.lower()]
    if not matches:
        raise AudioError("no input device matching {!r} (inputs: {})".format(
            spec, ", ".join(d.name for d in devices)), hint=_LIST_HINT)
    if len(matches) > 1:
        raise AudioError("{!r} matches several input devices: {}".format(
            spec, ", ".join("{}={}".format(d.index, d.name) for d in matches)), hint="pass the index instead")
    return matches[0]


def check_input_rate(device: AudioDevice, sample_rate: int, channels: int = 1) -> None:
    """Raise :class:`AudioError` when ``device`` refuses ``sample_rate``."""
    sd = import_sounddevice()
    try:
        sd.check_input_settings(device=device.index, samplerate=sample_rate, channels=channels, dtype="float32")
    except (sd.PortAudioError, ValueError) as exc:
        raise AudioError(
            "input device {} ({}) refuses {} Hz x {} channel(s): {}".format(device.index, device.name, sample_rate, channels, exc),
            hint="omit --rate to use the device default of {} Hz".format(device.default_rate),
        ) from exc


class MicSource:
    """Capture from a microphone into a ring buffer until ``stop``."""

    realtime = True

    def __init__(self, device: DeviceSpec = None, sample_rate: Optional[int] = None, channels: int = 1,
                 channel: Optional[int] = None, block_s: float = 0.02) -> None:
        self.device = resolve_input_device(device)
        self.sample_rate = int(sample_rate or self.device.default_rate)
        self.channels = max(channels, (channel or 0) + 1)
        if self.channels > self.device.channels:
            raise AudioError("input device {} has {} channel(s), {} requested".format(
                self.device.name, self.device.channels, self.channels), hint="pass --channel below that")
        check_input_rate(self.device, self.sample_rate, self.channels)
        self.channel = channel
        self.block = max(1, int(self.sample_rate * block_s))
        self.input_overflows = 0
        self._stream: Any = None

    @property
    def description(self) -> str:
        return "microphone {}: {} @ {} Hz".format(self.device.index, self.device.name, self.sample_rate)

    def start(self, ring: RingBuffer) -> None:
        """Open the PortAudio stream; its callback only copies into ``ring``."""
        sd = import_sounddevice()
        channel = self.channel

        def callback(indata: np.ndarray, frames: int, when: Any, status: Any) -> None:
            if status.input_overflow:
                self.input_overflows += 1
            ring.write(to_mono(indata, channel))

        try:
            self._stream = sd.InputStream(device=self.device.index, samplerate=self.sample_rate,
                                          channels=self.channels, dtype="float32", blocksize=self.block,
                                          callback=callback)
            self._stream.start()
        except sd.PortAudioError as exc:
            raise AudioError("cannot open {}: {}".format(self.description, exc), hint=_LIST_HINT) from exc

    def stop(self) -> None:
        if self._stream is not None:
            self._stream.stop()
            self._stream.close()
            self._stream = None


class _ThreadSource:
    """A source read by a producer thread that writes into the ring buffer (blocking: no loss)."""

    realtime = False

    def __init__(self) -> None:
        self._thread: Optional[threading.Thread] = None
        self._stop = threading.Event()
        self.input_overflows = 0
        self.error: Optional[BaseException] = None

    def start(self, ring: RingBuffer) -> None:
        self._thread = threading.Thread(target=self._pump, args=(ring,), name=type(self).__name__, daemon=True)
        self._thread.start()

    def _pump(self, ring: RingBuffer) -> None:
        started = time.monotonic()
        sent = 0
        try:
            for block in self.blocks():
                if self._stop.is_set():
                    break
                if self.realtime:
                    delay = started + sent / self.sample_rate - time.monotonic()
                    if delay > 0:
                        self._stop.wait(delay)
                    ring.write(block)
                else:
                    ring.write(block, block=True)
                sent += block.shape[0]
        except BaseException as exc:  # handed to the runner thread, re-raised there
            self.error = exc
        finally:
            ring.close()

    def blocks(self) -> Any:
        raise NotImplementedError

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)


class FileSource(_ThreadSource):
    """A WAV/FLAC/OGG file, as fast as possible or paced in real time (``realtime=True``)."""

    def __init__(self, path: Any, realtime: bool = False, channel: Optional[int] = None, block_s: float = 0.02) -> None:
        super().__init__()
        sf = _soundfile()
        self.path = str(path)
        try:
            info = sf.info(self.path)
        except (RuntimeError, OSError) as exc:  # soundfile.LibsndfileError derives from RuntimeError
            raise AudioError("cannot read audio file {}: {}".format(self.path, exc),
                             hint="give a WAV, FLAC or OGG file") from exc
        self.sample_rate = int(info.samplerate)
        self.frames = int(info.frames)
        check_complete(self.path, self.frames, self.sample_rate)
        if self.frames == 0:
            raise AudioError("audio file {} holds no samples".format(self.path), hint="give a recording with audio in it")
        self.channel = channel
        if channel is not None and channel >= info.channels:
            raise AudioError("{} has {} channel(s), channel {} requested".format(self.path, info.channels, channel))
        self.realtime = realtime
        self.block = max(1, int(self.sample_rate * block_s))

    @property
    def description(self) -> str:
        return "file {} @ {} Hz{}".format(self.path, self.sample_rate, " (real time)" if self.realtime else "")

    def blocks(self) -> Any:
        for block in _soundfile().blocks(self.path, blocksize=self.block, dtype="float32", always_2d=True):
            yield to_mono(block, self.channel)


class StdinSource(_ThreadSource):
    """Raw interleaved PCM (s16le, s32le or f32le) from a binary stream, stdin by default."""

    def __init__(self, sample_rate: int, channels: int = 1, sample_format: str = "s16le",
                 stream: Optional[BinaryIO] = None, channel: Optional[int] = None, block_s: float = 0.02) -> None:
        super().__init__()
        if sample_format not in PCM_TYPES:
            raise AudioError("unknown PCM format {!r}; expected one of {}".format(sample_format, ", ".join(PCM_TYPES)))
        if sample_rate <= 0 or channels <= 0:
            raise AudioError("raw PCM needs a positive --rate and --channels (got {} Hz, {})".format(sample_rate, channels))
        self.sample_rate, self.channels, self.channel = int(sample_rate), int(channels), channel
        self.dtype = np.dtype(PCM_TYPES[sample_format])
        self.stream = stream if stream is not None else sys.stdin.buffer
        self.frame_bytes = self.dtype.itemsize * self.channels
        self.block = max(1, int(self.sample_rate * block_s))

    @property
    def description(self) -> str:
        return "stdin PCM {} x {} @ {} Hz".format(self.dtype, self.channels, self.sample_rate)

    def blocks(self) -> Any:
        leftover = b""
        while True:
            data = self.stream.read(self.block * self.frame_bytes)
            if not data:
                break
            data = leftover + data
            usable = len(data) - len(data) % self.frame_bytes
            leftover = data[usable:]
            frames = np.frombuffer(data[:usable], dtype=self.dtype).reshape(-1, self.channels)
            yield to_mono(frames, self.channel)


def declared_wav_frames(path: Any) -> Optional[int]:
    """Frames a RIFF/WAVE header declares for its ``data`` chunk; None for other files or an unset size."""
    import struct

    try:
        with open(str(path), "rb") as f:
            riff = f.read(12)
            if len(riff) < 12 or riff[:4] != b"RIFF" or riff[8:12] != b"WAVE":
                return None
            block_align = 0
            while True:
                head = f.read(8)
                if len(head) < 8:
                    return None
                chunk, size = head[:4], struct.unpack("<I", head[4:])[0]
                if chunk == b"fmt ":
                    fmt = f.read(size + (size & 1))
                    block_align = struct.unpack("<H", fmt[12:14])[0] if len(fmt) >= 14 else 0
                elif chunk == b"data":
                    return size // block_align if block_align and size not in (0, 0xFFFFFFFF) else None
                else:
                    f.seek(size + (size & 1), 1)
    except OSError:
        return None


def check_complete(path: Any, frames: int, sample_rate: int) -> None:
    """Refuse a WAV whose data were cut short (libsndfile reads what is there without a word)."""
    declared = declared_wav_frames(path)
    if declared is not None and declared > frames:
        raise AudioError(
            "audio file {} is truncated: its header declares {:.2f} s, the file holds {:.2f} s".format(
                path, declared / float(sample_rate), frames / float(sample_rate)),
            hint="re-record or re-export it (sox {} fixed.wav rewrites the header for what is there)".format(path),
        )


def _soundfile() -> Any:
    try:
        import soundfile
    except (ImportError, OSError) as exc:
        raise DependencyError("soundfile (libsndfile) is needed to read audio files ({})".format(exc),
                              hint="pip install 'emotrt[audio]'") from exc
    return soundfile
