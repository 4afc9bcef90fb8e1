"""Issue 15 item 5 for the environment side: hypothesis feeds the environments file reader (``emotrt env
import``, ``emotrt export --environments``) and the prompt templates (``--template``, a checkpoint's
``text_template``) what a user may write. Each reads or raises one ``ConfigError``; what reads is usable."""
import json

from hypothesis import given
from hypothesis import strategies as st

from emotrt.export.environments import read_environment_file
from emotrt.runtime.errors import ConfigError
from emotrt.runtime.tables import is_valid_name
from emotrt.training.text import TEMPLATES, prompt
from tests.runtime.test_fuzz_readers import FUZZ, json_values, read_or_refuse


def _environment_files():
    names = st.one_of(st.sampled_from(["busy_cafe", "car.highway", "", "../up", "a b", "x" * 65]), st.text(max_size=10))
    descriptions = st.one_of(st.text(max_size=12), st.lists(st.text(max_size=12), max_size=3), json_values,
                             st.fixed_dictionaries({"descriptions": st.one_of(st.lists(st.text(max_size=12), max_size=3), json_values)}))
    documents = st.one_of(st.dictionaries(names, descriptions, max_size=4), json_values)
    return st.one_of(documents.map(lambda d: json.dumps(d).encode()), st.binary(max_size=80))


@FUZZ
@given(data=_environment_files())
def test_environment_file_reads_or_refuses_naming_the_file(tmp_path, data):
    environments = read_or_refuse(tmp_path / "environments.json", data, read_environment_file)
    for name, descriptions in (environments or {}).items():
        assert is_valid_name(name)  # every name fits the table before any token is written
        assert all(isinstance(d, str) for d in descriptions) and any(d.strip() for d in descriptions)


@FUZZ
@given(template=st.one_of(st.sampled_from(sorted(TEMPLATES)), st.text(alphabet="{}0:dx!r .", max_size=10),
                          st.text(max_size=10).map(lambda t: t + "{}")), description=st.text(max_size=12))
def test_prompt_template_fills_or_refuses(template, description):
    try:
        text = prompt(description, template)
    except ConfigError as exc:
        assert repr(template) in exc.message
        return
    assert description.strip().rstrip(".") in text
