"""HL7 v2 ORU^R01 adapter: the HL7 normative-edition sample, MDC bedside vitals, LOINC labs, times."""

from __future__ import annotations

from typing import Any

import hl7  # type: ignore[import-untyped]
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models.events import LabResult, OxygenSupport, PatientContext, VitalSigns
from streams.feeds.hl7v2 import normalise_hl7, parse_oru

# The ORU^R01 sample from the HL7 normative edition, as shipped in python-hl7's test data (tests/samples.py).
NORMATIVE_SAMPLE = "\r".join([
    "MSH|^~\\&|GHH LAB|ELAB-3|GHH OE|BLDG4|200202150930||ORU^R01|CNTRL-3456|P|2.4",
    "PID|||555-44-4444||EVERYWOMAN^EVE^E^^^^L|JONES|196203520|F|||153 FERNWOOD DR.^^STATESVILLE^OH^35292||"
    "(206)3345232|(206)752-121||||AC555444444||67-A4335^OH^20030520",
    "OBR|1|845439^GHH OE|1045813^GHH LAB|1554-5^GLUCOSE|||200202150730||||||||555-55-5555^PRIMARY^PATRICIA P^^^^MD"
    "^^LEVEL SEVEN HEALTHCARE, INC.|||||||||F||||||444-44-4444^HIPPOCRATES^HOWARD H^^^^MD",
    "OBX|1|SN|1554-5^GLUCOSE^POST 12H CFST:MCNC:PT:SER/PLAS:QN||^182|mg/dl|70_105|H|||F",
    "OBX|2|FN|1553-5^GLUCOSE^POST 12H CFST:MCNC:PT:SER/PLAS:QN||^182|mg/dl|70_105|H|||F\r",
])

TS = "20240101100000+0000"


def oru(*obx: str, msh_time: str = TS, obr_time: str = TS, pid: str = "MRN123^^^HOSP^MR") -> str:
    return "\r".join([
        f"MSH|^~\\&|GATEWAY|ICU|CRSWATCH|HOSP|{msh_time}||ORU^R01^ORU_R01|MSG1|P|2.6",
        f"PID|||{pid}||DOE^JOHN",
        f"OBR|1|||182777000^monitoring of patient^SCT|||{obr_time}",
        *obx,
    ])


def test_normative_sample_is_read_like_python_hl7_reads_it() -> None:
    ours = parse_oru(NORMATIVE_SAMPLE)
    theirs = hl7.parse(NORMATIVE_SAMPLE)
    assert ours.patient_id == theirs["PID.F3.R1.C1"] == "555-44-4444"
    assert ours.control_id == str(theirs.segment("MSH")[10]) == "CNTRL-3456"
    assert ours.msh_time == "200202150930"
    obx = list(theirs.segments("OBX"))
    codes = [theirs[f"OBX{i}.F3.R1.C1"] for i in (1, 2)]
    assert [f[3].split("^")[0] for _, f in ours.observations] == codes == ["1554-5", "1553-5"]
    assert [f[5] for _, f in ours.observations] == [str(o[5]) for o in obx] == ["^182", "^182"]
    assert [f[6] for _, f in ours.observations] == [str(o[6]) for o in obx] == ["mg/dl", "mg/dl"]
    assert [t for t, _ in ours.observations] == ["200202150730", "200202150730"]  # OBR-7, the time they fall back to


def test_normative_sample_glucose_is_outside_the_contract_and_says_so() -> None:
    n = normalise_hl7(NORMATIVE_SAMPLE, "sample", strict=True)
    assert n.units == 2 and not n.events and len(n.rejected) == 2
    assert "1554-5" in n.rejected[0].reason and "not in the contract" in n.rejected[0].reason
    assert all(r.category == "unsupported" for r in n.rejected)


# IHE PCD-01 style message of a monitor gateway: device and channel headers carry no value.
PCD01 = oru(
    "OBX|1||69965^MDC_DEV_MON_PHYSIO_MULTI_PARAM_MDS^MDC|1.0.0.0|||||||X",
    f"OBX|2|NM|147842^MDC_ECG_HEART_RATE^MDC|1.1.1.1|118|264864^MDC_DIM_BEAT_PER_MIN^MDC|||||R|||{TS}",
    f"OBX|3|NM|150021^MDC_PRESS_BLD_NONINV_SYS^MDC|1.2.1.1|86|266016^MDC_DIM_MMHG^MDC|||||R|||{TS}",
    f"OBX|4|NM|150022^MDC_PRESS_BLD_NONINV_DIA^MDC|1.2.1.2|48|266016^MDC_DIM_MMHG^MDC|||||R|||{TS}",
    f"OBX|5|NM|150023^MDC_PRESS_BLD_NONINV_MEAN^MDC|1.2.1.3|61|266016^MDC_DIM_MMHG^MDC|||||R|||{TS}",
    f"OBX|6|NM|150456^MDC_PULS_OXIM_SAT_O2^MDC|1.3.1.1|91|262688^MDC_DIM_PERCENT^MDC|||||R|||{TS}",
    f"OBX|7|NM|151562^MDC_RESP_RATE^MDC|1.4.1.1|28|264928^MDC_DIM_RESP_PER_MIN^MDC|||||R|||{TS}",
    f"OBX|8|NM|150364^MDC_TEMP_BODY^MDC|1.5.1.1|102.2|^MDC_DIM_FAHR^MDC|||||R|||{TS}",
)


def test_pcd01_bedside_vitals_become_one_vitals_event() -> None:
    n = normalise_hl7(PCD01, strict=True)
    assert n.units == 8 and n.accepted == 7 and len(n.ignored) == 1 and not n.rejected
    (ev,) = n.events
    assert isinstance(ev, VitalSigns) and ev.patient_id == "MRN123"
    assert ev.heart_rate and ev.sbp and ev.dbp and ev.map and ev.spo2 and ev.resp_rate and ev.temperature
    assert (ev.heart_rate.value, ev.sbp.value, ev.dbp.value, ev.map.value, ev.spo2.value, ev.resp_rate.value) == (
        118, 86, 48, 61, 91, 28)
    assert ev.temperature.unit == "Cel" and ev.temperature.value == pytest.approx(39.0)


@pytest.mark.parametrize(("code", "refid", "measure"), [
    ("147842", "MDC_ECG_HEART_RATE", "heart_rate"), ("150021", "MDC_PRESS_BLD_NONINV_SYS", "sbp"),
    ("150022", "MDC_PRESS_BLD_NONINV_DIA", "dbp"), ("150023", "MDC_PRESS_BLD_NONINV_MEAN", "map"),
    ("150033", "MDC_PRESS_BLD_ART_SYS", "sbp"), ("150034", "MDC_PRESS_BLD_ART_DIA", "dbp"),
    ("150035", "MDC_PRESS_BLD_ART_MEAN", "map"), ("150037", "MDC_PRESS_BLD_ART_ABP_SYS", "sbp"),
    ("150038", "MDC_PRESS_BLD_ART_ABP_DIA", "dbp"), ("150039", "MDC_PRESS_BLD_ART_ABP_MEAN", "map"),
    ("150456", "MDC_PULS_OXIM_SAT_O2", "spo2"),
    ("151562", "MDC_RESP_RATE", "resp_rate"), ("151578", "MDC_TTHOR_RESP_RATE", "resp_rate"),
    ("150364", "MDC_TEMP_BODY", "temperature"), ("188424", "MDC_TEMP_ORAL", "temperature"),
    ("150344", "MDC_TEMP", "temperature")])
def test_each_mdc_vital_by_code_and_by_reference_id(code: str, refid: str, measure: str) -> None:
    unit = {"heart_rate": "/min", "resp_rate": "/min", "spo2": "%", "temperature": "Cel"}.get(measure, "mm[Hg]")
    value = {"spo2": 95, "temperature": 37.0}.get(measure, 60)
    for ident in (f"{code}^{refid}^MDC", f"^{refid}^MDC"):
        (ev,) = normalise_hl7(oru(f"OBX|1|NM|{ident}||{value}|{unit}^{unit}^UCUM|||||F")).events
        assert getattr(ev, measure).value == value


# IEEE 11073 MDC unit codes (partition 4 x 65536 + term code) -> (an MDC vital sent with it, the UCUM unit)
MDC_UNIT_CODES = [("264864", "147842^MDC_ECG_HEART_RATE^MDC", "heart_rate", 80.0, "/min"),
                  ("264928", "151562^MDC_RESP_RATE^MDC", "resp_rate", 20.0, "/min"),
                  ("266016", "150021^MDC_PRESS_BLD_NONINV_SYS^MDC", "sbp", 110.0, "mm[Hg]"),
                  ("262688", "150456^MDC_PULS_OXIM_SAT_O2^MDC", "spo2", 95.0, "%"),
                  ("268192", "150364^MDC_TEMP_BODY^MDC", "temperature", 37.2, "Cel")]


@pytest.mark.parametrize(("unit_code", "ident", "measure", "value", "ucum"), MDC_UNIT_CODES)
def test_mdc_units_by_numeric_code_alone(unit_code: str, ident: str, measure: str, value: float, ucum: str) -> None:
    (ev,) = normalise_hl7(oru(f"OBX|1|NM|{ident}||{value}|{unit_code}^^MDC|||||F")).events
    assert (getattr(ev, measure).value, getattr(ev, measure).unit) == (value, ucum)


def test_an_mdc_unit_code_that_contradicts_its_reference_id_is_rejected() -> None:
    n = normalise_hl7(oru("OBX|1|NM|147842^MDC_ECG_HEART_RATE^MDC||80|264864^MDC_DIM_MMHG^MDC|||||F"))
    assert not n.events
    assert n.rejected[0].reason == "OBX-6 MDC unit code 264864 is MDC_DIM_BEAT_PER_MIN, not MDC_DIM_MMHG"


def test_a_numeric_unit_without_the_mdc_system_is_not_a_unit() -> None:
    n = normalise_hl7(oru("OBX|1|NM|147842^MDC_ECG_HEART_RATE^MDC||80|264864|||||F"))
    assert not n.events and n.rejected[0].reason.startswith("unit '264864' not accepted for MDC 147842")


@pytest.mark.parametrize(("obx", "measure"), [
    ("OBX|1|NM|8867-4^HR^LN||80|{beat}/min^^UCUM|||||F", "heart_rate"),
    ("OBX|1|NM|8867-4^HR^LN||80|{beats}/min^^UCUM|||||F", "heart_rate"),
    ("OBX|1|NM|147842^MDC_ECG_HEART_RATE^MDC||80|{beat}/min^^UCUM|||||F", "heart_rate"),
    ("OBX|1|NM|9279-1^RR^LN||80|{breath}/min^^UCUM|||||F", "resp_rate"),
    ("OBX|1|NM|151562^MDC_RESP_RATE^MDC||80|{breaths}/min^^UCUM|||||F", "resp_rate")])
def test_ucum_annotated_rates_are_per_minute(obx: str, measure: str) -> None:
    (ev,) = normalise_hl7(oru(obx)).events
    assert (getattr(ev, measure).value, getattr(ev, measure).unit) == (80, "/min")


def test_an_annotated_per_minute_unit_is_still_not_a_pressure_unit() -> None:
    n = normalise_hl7(oru("OBX|1|NM|8480-6^SBP^LN||80|{beat}/min^^UCUM|||||F"))
    assert not n.events and n.rejected[0].reason.startswith("unit '{beat}/min' not accepted for LOINC 8480-6")


def test_pulse_rate_alone_is_heart_rate_marked_as_pulse() -> None:
    # Issue 14: pulse rate is used as heart rate when the monitor sends no ECG rate, and says so.
    n = normalise_hl7(oru("OBX|1|NM|149530^MDC_PULS_OXIM_PULS_RATE^MDC||72|264864^MDC_DIM_BEAT_PER_MIN^MDC|||||F"))
    assert not n.rejected and len(n.events) == 1
    ev = n.events[0]
    assert isinstance(ev, VitalSigns) and ev.heart_rate is not None and ev.heart_rate.value == 72
    assert ev.provenance.assumption is not None and "pulse rate (MDC 149530 (MDC_PULS_OXIM_PULS_RATE))" in \
        ev.provenance.assumption and "no ECG heart rate" in ev.provenance.assumption


@pytest.mark.parametrize(("obx", "check"), [
    ("OBX|1|SN|2276-4^Ferritin^LN||>^202000|ng/mL^^UCUM|||||F", lambda e: (e.value, e.comparator) == (202000, ">")),
    ("OBX|1|NM|1988-5^CRP^LN||9.7|mg/dL^^UCUM|||||F", lambda e: (e.value, e.unit) == (97.0, "mg/L")),
    ("OBX|1|NM|3255-7^Fibrinogen^LN||0.8|g/L^^UCUM|||||F", lambda e: (e.value, e.unit) == (80.0, "mg/dL")),
    ("OBX|1|NM|777-3^Platelets^LN||35|10*3/uL^^UCUM|||||F", lambda e: e.value == 35),
])
def test_loinc_labs_with_ucum_units(obx: str, check: Any) -> None:
    (ev,) = normalise_hl7(oru(obx)).events
    assert isinstance(ev, LabResult) and check(ev)


def test_weight_flow_and_oxygen_method() -> None:
    n = normalise_hl7(oru("OBX|1|NM|29463-7^Body weight^LN||80|kg^^UCUM|||||F",
                          "OBX|2|NM|3151-8^O2 flow^LN||4|L/min^^UCUM|||||F",
                          "OBX|3|CWE|107117-4^O2 method^LN||336623009^Oxygen nasal cannula^SCT||||||F"))
    weight, flow, device = n.events
    assert isinstance(weight, PatientContext) and weight.weight is not None and weight.weight.value == 80
    assert isinstance(flow, OxygenSupport) and flow.flow_l_min == 4
    assert isinstance(device, OxygenSupport) and device.device is not None and device.device.value == "nasal_cannula"


def test_time_falls_back_from_obx14_to_obr7_to_msh7() -> None:
    obx = "OBX|1|NM|8867-4^HR^LN||80|/min^^UCUM|||||F"
    (a,) = normalise_hl7(oru(obx + "|||20240101093000+0100")).events
    assert a.time.isoformat() == "2024-01-01T09:30:00+01:00"
    (b,) = normalise_hl7(oru(obx, obr_time="20240101080000+0000")).events
    assert b.time.isoformat() == "2024-01-01T08:00:00+00:00"
    (c,) = normalise_hl7(oru(obx, obr_time="", msh_time="202401010700-0500")).events
    assert c.time.isoformat() == "2024-01-01T07:00:00-05:00"


def test_a_time_without_offset_is_rejected() -> None:
    n = normalise_hl7(oru("OBX|1|NM|8867-4^HR^LN||80|/min^^UCUM|||||F|||20240101093000"))
    assert not n.events and "no UTC offset" in n.rejected[0].reason


@pytest.mark.parametrize(("obx", "words"), [
    ("OBX|1|NM|2276-4^Ferritin^LN||900|mg^^UCUM|||||F", "unit 'mg' not accepted for LOINC 2276-4 (ferritin)"),
    ("OBX|1|NM|8867-4^HR^LN||abc|/min^^UCUM|||||F", "not a finite number"),
    ("OBX|1|NM|8310-5^Temp^LN||52|Cel^^UCUM|||||F", "outside the possible range"),
    ("OBX|1|ST|8867-4^HR^LN||fast|/min^^UCUM|||||F", "value type 'ST'"),
    ("OBX|1|NM|8867-4^HR^LN||80|/min^^UCUM|||||W", "OBX-11"),
    ("OBX|1|NM|XYZ^Local^L||80|/min^^UCUM|||||F", "neither a LOINC"),
])
def test_rejections_carry_the_reason(obx: str, words: str) -> None:
    n = normalise_hl7(oru(obx))
    assert not n.events and words in n.rejected[0].reason


@pytest.mark.parametrize(("message", "category"), [
    ("hello world", "not_hl7"),
    (oru().replace("ORU^R01^ORU_R01", "ADT^A01^ADT_A01"), "unsupported"),
    (oru("OBX|1|NM|8867-4^HR^LN||80|/min^^UCUM|||||F", pid=""), "missing_field"),
])
def test_whole_message_rejections(message: str, category: str) -> None:
    n = normalise_hl7(message)
    assert n.units == 1 and n.rejected[0].category == category


def test_escaped_patient_id_and_other_encoding_characters() -> None:
    msg = oru("OBX|1|NM|8867-4^HR^LN||80|/min^^UCUM|||||F", pid="A\\S\\B^^^HOSP").replace("^~\\&", "^~\\&", 1)
    (ev,) = normalise_hl7(msg).events
    assert ev.patient_id == "A^B"
    other = msg.replace("|", "#").replace("#^~\\&#", "#^~\\&#", 1)
    (ev2,) = normalise_hl7(other).events
    assert ev2.patient_id == "A^B" and ev2.heart_rate is not None


# ---------------------------------------------------------------- the splitter reads what python-hl7 reads

_text = st.text(alphabet=st.characters(blacklist_characters="|^~\\&\r\n", blacklist_categories=("Cs", "Cc")),
                max_size=12)


@settings(max_examples=150, deadline=None)
@given(pid=_text.filter(lambda s: s.strip()), code=_text, value=_text, unit=_text, time=_text, n=st.integers(1, 4))
def test_splitter_and_python_hl7_agree(pid: str, code: str, value: str, unit: str, time: str, n: int) -> None:
    msg = oru(*[f"OBX|{i}|NM|{code}^x^LN||{value}|{unit}|||||F|||{time}" for i in range(1, n + 1)], pid=pid)
    ours = parse_oru(msg)
    theirs = hl7.parse(msg)
    assert ours.patient_id == theirs["PID.F3.R1.C1"].strip()
    obx = list(theirs.segments("OBX"))
    assert len(ours.observations) == len(obx) == n
    for i, ((_, fields), o) in enumerate(zip(ours.observations, obx, strict=True), 1):
        assert fields[3].split("^")[0] == theirs[f"OBX{i}.F3.R1.C1"]
        assert fields[5] == str(o[5]) and fields[6] == str(o[6])
        assert fields[14].strip() == str(o[14]).strip()  # python-hl7 drops trailing blanks of a segment
