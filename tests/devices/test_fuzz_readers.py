"""Issue 15 item 5 for the device side: hypothesis feeds the tegrastats line parser and the ``devices.toml``
inventory reader what a board or a user may hand them. The parser never raises (it keeps what it does not
know in ``unknown``); the inventory either loads or raises one error naming the file."""
import json

from hypothesis import given
from hypothesis import strategies as st

from emotrt.devices.inventory import Inventory
from emotrt.devices.tegrastats import parse_line
from tests.devices.test_tegrastats import AGX_ORIN, NANO, ORIN_NANO, THOR, XAVIER
from tests.runtime.test_fuzz_readers import FUZZ, json_values, read_or_refuse

#: characters that make numbers odd: non-ASCII digits (Arabic-Indic, superscript, fullwidth), signs, separators
DIGITS = "0123456789٣²０"
ODD = DIGITS + "-+.,%@/[]()CmWMBx \t"


def _mutated_lines():
    """Real tegrastats lines of every module, token by token kept, dropped or rewritten from ``ODD``."""
    tokens = [t for line in (ORIN_NANO, XAVIER, AGX_ORIN, NANO, THOR) for t in line.split()]
    odd = st.text(alphabet=ODD, max_size=8)
    digits = st.text(alphabet=DIGITS, min_size=1, max_size=4)
    core = st.one_of(odd, st.builds("{}%@{}".format, digits, digits), digits.map("@{}".format), digits.map("{}%".format))
    token = st.one_of(st.sampled_from(tokens), odd, st.lists(core, max_size=4).map(lambda cores: "CPU [" + ",".join(cores) + "]"),
                      st.builds(lambda t, s: t[: len(t) // 2] + s, st.sampled_from(tokens), st.text(alphabet=ODD, max_size=6)))
    return st.lists(token, max_size=40).map(" ".join)


@FUZZ
@given(line=_mutated_lines())
def test_tegrastats_parser_never_raises_on_mutated_lines(line):
    s = parse_line(line)
    for value in list(s.rails_mw.values()) + list(s.rails_avg_mw.values()) + list(s.rails_max_mw.values()):
        assert isinstance(value, int)
    for core in s.cpu:
        assert core is None or all(v is None or isinstance(v, int) for v in core)
    for entry in s.utilisation.values():
        assert all(isinstance(mhz, int) for mhz in entry["mhz"])
    assert s.total_power_mw is None or isinstance(s.total_power_mw, int)


def _toml_value():
    strings = st.text(max_size=12).map(json.dumps)
    scalars = st.one_of(strings, st.integers(-2, 70000).map(str), st.booleans().map(lambda b: str(b).lower()),
                        st.floats(allow_nan=False, allow_infinity=False).map(repr))
    return st.one_of(scalars, st.lists(scalars, max_size=3).map(lambda v: "[" + ", ".join(v) + "]"),
                     json_values.map(lambda v: json.dumps(json.dumps(v))))


def _inventories():
    """TOML with the inventory's own keys (and stray ones) under [devices.NAME] and other tables, and raw bytes."""
    keys = st.sampled_from(["host", "port", "user", "identity", "root", "groups", "python", "colour"])
    names = st.one_of(st.sampled_from(["orin", "bench-1", "a.b"]), st.text(max_size=8).map(json.dumps))
    table = st.builds(lambda name, items, header: "[{}.{}]\n".format(header, name) + "".join(
        "{} = {}\n".format(k, v) for k, v in items), names, st.lists(st.tuples(keys, _toml_value()), max_size=6, unique_by=lambda kv: kv[0]),
        st.sampled_from(["devices", "devices", "fleet"]))
    documents = st.one_of(st.lists(table, max_size=3).map("\n".join),
                          _toml_value().map(lambda v: "devices = {}\n".format(v)))
    return st.one_of(documents.map(lambda t: t.encode("utf-8")), st.binary(max_size=120))


@FUZZ
@given(data=_inventories())
def test_inventory_loads_or_refuses_naming_the_file(tmp_path, data):
    inventory = read_or_refuse(tmp_path / "devices.toml", data, Inventory.load)
    for entry in inventory or ():
        assert isinstance(entry.port, int) and all(isinstance(g, str) for g in entry.groups)
        assert Inventory.load(inventory.save()).devices[entry.name] == entry  # what loads, saves and loads back
