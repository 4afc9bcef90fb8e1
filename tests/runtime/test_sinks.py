import io
import json

from rich.console import Console

from emotrt.runtime.results import Result
from emotrt.runtime.sinks import JsonlSink, LiveView

LABELS = ("neutral", "happy")


def _result(end, speech, posteriors=None):
    return Result(index=0, start=end - 1, end=end, speaker="alice", environment="busy_cafe", speech=speech,
                  vad_probability=0.9 if speech else 0.1, labels=LABELS,
                  emotion="happy" if speech else None, posteriors=posteriors, raw=posteriors,
                  avd=(3.0, 4.0, 2.5) if speech else None)


def test_jsonl_lines_name_the_labels():
    out = io.StringIO()
    sink = JsonlSink(out)
    sink(_result(2.0, True, (0.25, 0.75)))
    sink(_result(2.5, False))
    first, second = (json.loads(line) for line in out.getvalue().splitlines())
    assert first["posteriors"] == {"neutral": 0.25, "happy": 0.75} and first["avd"]["valence"] == 4.0
    assert second["speech"] is False and second["posteriors"] is None and second["end"] == 2.5


def test_live_view_keeps_the_last_emotion_through_silence():
    buffer = io.StringIO()
    view = LiveView(console=Console(file=buffer, width=120, force_terminal=False))
    view(_result(2.0, True, (0.25, 0.75)))
    view(_result(3.5, False))
    view.close()
    text = buffer.getvalue()
    assert "alice" in text and "happy" in text and "3.5 s" in text and "silence" in text
