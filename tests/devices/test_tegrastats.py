"""tegrastats lines: every format of REFERENCE.md, newer variants (Thor), and generated ones never raise."""
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emotrt.devices.tegrastats import parse_line

ORIN_NANO = ("11-21-2026 10:00:00 RAM 3012/7620MB (lfb 12x4MB) SWAP 0/3810MB (cached 0MB) "
             "CPU [12%@1510,8%@1510,off,off,3%@1510,5%@1510] EMC_FREQ 4%@2133 GR3D_FREQ 37%@[624] NVDEC0 off "
             "cpu@47.1C gpu@45.9C tj@48.2C VDD_IN 5120mW/4980mW VDD_CPU_GPU_CV 1430mW/1390mW VDD_SOC 1510mW/1500mW")
XAVIER = ("RAM 2100/15823MB (lfb 900x4MB) SWAP 0/7911MB (cached 0MB) CPU [20%@1190,10%@1190,5%@1190,7%@1190] "
          "EMC_FREQ 1% GR3D_FREQ 55% GPU@31C CPU@30.5C Tboard@29C GPU 2310/2200 CPU 810/790 SOC 2600/2590 CV 0/0")
AGX_ORIN = ("11-21-2026 10:00:01 RAM 20640/62817MB (lfb 1x2MB) CPU [23%@2201,10%@2201] EMC_FREQ 3%@3199 "
            "GR3D_FREQ 12%@[1300,1300] NVDLA0 off cpu@52.9C/53.0C gpu@47.6C/47.6C VDD_GPU_SOC 5139mW/5100mW/5300mW "
            "VDD_CPU_CV 3268mW/3200mW/3400mW VIN_SYS_5V0 5500mW/5500mW/5600mW")
NANO = ("RAM 1500/3964MB (lfb 100x4MB) SWAP 0/1982MB (cached 0MB) CPU [5%@1479,3%@1479,off,off] EMC_FREQ 0%@1600 "
        "GR3D_FREQ 0%@921 APE 25 PLL@32C CPU@34.5C PMIC@50C GPU@33C AO@39.5C thermal@33.75C "
        "POM_5V_IN 2080/2080 POM_5V_GPU 0/0 POM_5V_CPU 330/330")
THOR = ("12-01-2026 09:00:00 RAM 9000/125000MB (lfb 10x4MB) CPU [1%@2601,0%@2601,off] GR3D_FREQ @[1575,1575,1575] "
        "NVENC off tj@-256C cpu@41.2C VIN 31000mW/30500mW/32000mW VDD_GPU -120mW/80mW/900mW VDD_CPU_SOC_MSS 9000mW/8800mW/9100mW "
        "SOMETHING_NEW 42%@7 fancy{token}")


def test_orin_nano_line_reads_every_field():
    s = parse_line(ORIN_NANO)
    assert s.timestamp == "11-21-2026 10:00:00"
    assert (s.ram_used_mb, s.ram_total_mb, s.swap_used_mb, s.swap_total_mb) == (3012, 7620, 0, 3810)
    assert s.cpu == [(12, 1510), (8, 1510), None, None, (3, 1510), (5, 1510)]
    assert s.utilisation["EMC_FREQ"] == {"percent": 4, "mhz": [2133]}
    assert s.utilisation["GR3D_FREQ"] == {"percent": 37, "mhz": [624]}
    assert s.gpu_percent == 37
    assert s.engines == {"NVDEC0": "off"}
    assert s.temperatures_c == {"cpu": 47.1, "gpu": 45.9, "tj": 48.2}
    assert s.rails_mw == {"VDD_IN": 5120, "VDD_CPU_GPU_CV": 1430, "VDD_SOC": 1510}
    assert s.rails_avg_mw["VDD_IN"] == 4980
    assert s.total_power_mw == 5120  # VDD_IN is the module input
    assert s.unknown == []


def test_xavier_line_unitless_rails_sum_to_the_total():
    s = parse_line(XAVIER)
    assert s.timestamp is None
    assert s.rails_mw == {"GPU": 2310, "CPU": 810, "SOC": 2600, "CV": 0}
    assert s.total_power_mw == 2310 + 810 + 2600
    assert s.utilisation["GR3D_FREQ"] == {"percent": 55, "mhz": []}
    assert s.temperatures_c["Tboard"] == 29.0
    assert s.unknown == []


def test_agx_orin_three_values_per_rail_and_no_input_rail():
    s = parse_line(AGX_ORIN)
    assert s.rails_max_mw == {"VDD_GPU_SOC": 5300, "VDD_CPU_CV": 3400, "VIN_SYS_5V0": 5600}
    assert s.total_power_mw == 5139 + 3268 + 5500  # no VDD_IN: the sum
    assert s.utilisation["GR3D_FREQ"]["mhz"] == [1300, 1300]
    assert s.temperatures_c["cpu"] == 52.9
    assert s.swap_used_mb is None and s.unknown == []


def test_nano_pom_input_rail():
    s = parse_line(NANO)
    assert s.total_power_mw == 2080
    assert s.engines["APE"] == "25"
    assert s.cpu_percent == 4.0


def test_thor_negative_current_offline_sensor_and_unknown_tokens():
    s = parse_line(THOR)
    assert s.rails_mw["VDD_GPU"] == -120
    assert s.total_power_mw == 31000  # VIN
    assert s.temperatures_c["tj"] is None  # -256C: sensor offline
    assert s.utilisation["GR3D_FREQ"] == {"percent": None, "mhz": [1575, 1575, 1575]}
    assert s.cpu == [(1, 2601), (0, 2601), None]
    assert "fancy{token}" in s.unknown


@pytest.mark.parametrize("line", ["", "   ", "garbage", "RAM", "CPU [", "VDD_IN 5/", "x@C", "RAM 1/2MB (lfb"])
def test_fragments_give_an_empty_sample(line):
    s = parse_line(line)
    assert s.total_power_mw is None


def test_a_line_without_rails_has_no_total():
    assert parse_line("RAM 3012/7620MB CPU [1%@100]").total_power_mw is None


_rail_names = st.from_regex(r"\A(VDD|POM|VIN)_[A-Z0-9]{1,8}\Z", fullmatch=True)


@st.composite
def tegrastats_lines(draw):
    """A line in any of the documented shapes, fields optional and rails in any order."""
    parts, rails = [], {}
    if draw(st.booleans()):
        parts.append("11-21-2026 10:00:00")
    used, total = draw(st.integers(0, 10 ** 6)), draw(st.integers(1, 10 ** 6))
    parts.append("RAM {}/{}MB (lfb {}x4MB)".format(used, total, draw(st.integers(0, 999))))
    if draw(st.booleans()):
        parts.append("SWAP 0/{}MB (cached 0MB)".format(draw(st.integers(0, 9999))))
    cores = draw(st.lists(st.one_of(st.just("off"), st.builds("{}%@{}".format, st.integers(0, 100), st.integers(0, 4000)),
                                    st.builds("{}%".format, st.integers(0, 100))), min_size=1, max_size=12))
    parts.append("CPU [{}]".format(",".join(cores)))
    parts.append(draw(st.sampled_from(["EMC_FREQ 4%@2133", "EMC_FREQ 1%", "", "GR3D_FREQ 37%@[624]", "GR3D_FREQ 55%",
                                       "GR3D_FREQ @[1575,1575]", "GR3D_FREQ 12%@[1300,1300]", "GR3D_FREQ 9%@918"])))
    parts.append(draw(st.sampled_from(["NVDEC0 off", "NVDLA0 off", "APE 174", "NVENC off NVJPG 12%@100", ""])))
    for name in draw(st.lists(st.sampled_from(["cpu", "gpu", "tj", "CPU", "Tboard", "soc2"]), max_size=4, unique=True)):
        value = draw(st.one_of(st.just(-256.0), st.floats(-40, 120, allow_nan=False).map(lambda v: round(v, 1))))
        parts.append("{}@{}C".format(name, value) + (draw(st.sampled_from(["", "/{}C".format(value)]))))
    unit = draw(st.sampled_from(["mW", ""]))
    three = draw(st.booleans())
    for name in draw(st.lists(_rail_names, max_size=5, unique=True)):
        values = draw(st.lists(st.integers(-5000, 60000), min_size=3, max_size=3))
        rails[name] = values[0]
        shown = values if three else values[:2]
        parts.append("{} {}".format(name, "/".join("{}{}".format(v, unit) for v in shown)))
    if draw(st.booleans()):
        parts.append(draw(st.text(alphabet="ABCXYZ_[]{}@%/0123456789 ", max_size=20)).strip() or "NEW_FIELD")
    return " ".join(p for p in parts if p), rails


@settings(max_examples=300, deadline=None)
@given(tegrastats_lines())
def test_generated_lines_parse_and_keep_every_rail(generated):
    line, rails = generated
    s = parse_line(line)
    for name, value in rails.items():
        assert s.rails_mw[name] == value
    if rails:
        inputs = [n for n in ("VDD_IN", "POM_5V_IN", "VIN") if n in rails]
        assert s.total_power_mw == (rails[inputs[0]] if inputs else sum(s.rails_mw.values()))
    assert s.ram_used_mb is not None and s.cpu


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_arbitrary_text_never_raises(text):
    s = parse_line(text)
    assert isinstance(s.unknown, list)
