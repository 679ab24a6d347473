"""HL7 v2 shapes from public bedside-monitor and lab samples that the adapter rejected or lost
(issue 14), each from a small ORU^R01 written here in the shape of public PCD-01 samples, with
adversarial neighbours.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from models.events import LabResult, VitalSigns
from models.records import CrsGradeChange
from streams.cli import main
from streams.feeds.hl7v2 import normalise_hl7, parse_oru, zone
from streams.replay import Replayer
from streams.settings import SettingsError, from_env
from tests.streams.feeds.test_fhir import med, run
from tests.streams.feeds.test_hl7v2 import TS, oru

MMHG = "266016^MDC_DIM_MMHG^MDC"
BPM = "264864^MDC_DIM_BEAT_PER_MIN^MDC"
DEGC = "268192^MDC_DIM_DEGC^MDC"


def _vitals(text: str, tz: str | None = None) -> VitalSigns:
    n = normalise_hl7(text, "monitor", tz=tz)
    assert not n.rejected, [r.reason for r in n.rejected]
    [ev] = n.events
    assert isinstance(ev, VitalSigns)
    return ev


# ---------------------------------------------------------------- NIBP as MDC_PRESS_CUFF_*


def test_cuff_pressure_codes_are_blood_pressure() -> None:
    ev = _vitals(oru(f"OBX|1|NM|150301^MDC_PRESS_CUFF_SYS^MDC|1.1.9.150301|80|{MMHG}|||||R|||{TS}",
                     f"OBX|2|NM|150302^MDC_PRESS_CUFF_DIA^MDC|1.1.9.150302|45|{MMHG}|||||R|||{TS}",
                     f"OBX|3|NM|150303^MDC_PRESS_CUFF_MEAN^MDC|1.1.9.150303|57|{MMHG}|||||R|||{TS}"))
    assert ev.sbp is not None and ev.dbp is not None and ev.map is not None
    assert (ev.sbp.value, ev.dbp.value, ev.map.value) == (80, 45, 57)


def test_cuff_sbp_80_with_fever_grades_like_any_sbp_80() -> None:
    def grade(sbp_code: str) -> int:
        r = Replayer()
        r.feed_normalised(run(med("1986438", rid="cart", effectiveDateTime="2024-01-01T00:00:00+00:00",
                                 subject={"reference": "Patient/MRN123"})))
        r.feed_normalised(normalise_hl7(oru(
            f"OBX|1|NM|150364^MDC_TEMP_BODY^MDC||39.2|{DEGC}|||||R|||20240102100000+0000",
            f"OBX|2|NM|{sbp_code}||80|{MMHG}|||||R|||20240102100000+0000")))
        return r.logs["MRN123"].state.crs_grade

    assert grade("150301^MDC_PRESS_CUFF_SYS^MDC") == grade("150021^MDC_PRESS_BLD_NONINV_SYS^MDC") == 2


def test_a_cuff_pressure_that_is_not_a_pressure_code_is_still_rejected() -> None:
    n = normalise_hl7(oru(f"OBX|1|NM|150300^MDC_PRESS_CUFF^MDC||80|{MMHG}|||||R"))
    assert not n.events and n.rejected[0].category == "unsupported"


# ---------------------------------------------------------------- units, BOM


@pytest.mark.parametrize(("obx", "measure", "value", "unit"), [
    ("OBX|1|NM|150021^MDC_PRESS_BLD_NONINV_SYS^MDC||82|mmHg|||||R", "sbp", 82.0, "mm[Hg]"),
    ("OBX|1|NM|147842^MDC_ECG_HEART_RATE^MDC||128|bpm|||||R", "heart_rate", 128.0, "/min"),
    ("OBX|1|NM|151562^MDC_RESP_RATE^MDC||28|bpm|||||R", "resp_rate", 28.0, "/min"),
    ("OBX|1|NM|150364^MDC_TEMP_BODY^MDC||102.2|degF|||||R", "temperature", 39.0, "Cel"),
    ("OBX|1|NM|8310-5^Body temperature^LN||102.2|degF|||||F", "temperature", 39.0, "Cel"),
])
def test_common_non_ucum_unit_spellings(obx: str, measure: str, value: float, unit: str) -> None:
    m = getattr(_vitals(oru(obx)), measure)
    assert m.value == pytest.approx(value) and m.unit == unit


@pytest.mark.parametrize("obx", ["OBX|1|NM|150456^MDC_PULS_OXIM_SAT_O2^MDC||95|bpm|||||R",
                                 "OBX|1|NM|150021^MDC_PRESS_BLD_NONINV_SYS^MDC||82|cmH2O|||||R",
                                 "OBX|1|NM|150364^MDC_TEMP_BODY^MDC||39|degK|||||R"])
def test_a_unit_alias_does_not_fit_another_measure(obx: str) -> None:
    n = normalise_hl7(oru(obx))
    assert not n.events and "not accepted for MDC" in n.rejected[0].reason


def test_a_utf8_bom_at_the_start_of_a_file() -> None:
    text = oru(f"OBX|1|NM|150021^MDC_PRESS_BLD_NONINV_SYS^MDC||80|{MMHG}|||||R")
    for payload in ("\ufeff" + text, ("\ufeff" + text).encode("utf-8")):
        n = normalise_hl7(payload)
        assert not n.rejected and len(n.events) == 1


def test_a_bom_before_a_second_appended_file_and_a_bom_inside_a_value() -> None:
    first = oru(f"OBX|1|NM|150021^MDC_PRESS_BLD_NONINV_SYS^MDC||80|{MMHG}|||||R")
    second = oru(f"OBX|1|NM|150021^MDC_PRESS_BLD_NONINV_SYS^MDC||\ufeff81|{MMHG}|||||R",
                 msh_time="20240101100100+0000", obr_time="20240101100100+0000")
    n = normalise_hl7("\ufeff" + first + "\r\n\ufeff" + second)
    assert n.units == 2 and len(n.events) == 1 and len(n.rejected) == 1  # not a crash: a reason
    assert "OBX-5" in n.rejected[0].reason and "is not a finite number" in n.rejected[0].reason


# ---------------------------------------------------------------- pulse rate


def test_ecg_heart_rate_wins_over_pulse_rate_which_is_counted() -> None:
    n = normalise_hl7(oru(f"OBX|1|NM|149530^MDC_PULS_OXIM_PULS_RATE^MDC||90|{BPM}|||||R",
                          f"OBX|2|NM|147842^MDC_ECG_HEART_RATE^MDC||131|{BPM}|||||R"))
    [ev] = n.events
    assert isinstance(ev, VitalSigns) and ev.heart_rate is not None and ev.heart_rate.value == 131
    assert ev.provenance.assumption is None
    assert n.units == 2 and n.accepted == 1 and len(n.ignored) == 1 and not n.rejected
    assert "MDC_PULS_OXIM_PULS_RATE" in n.ignored[0].reason and "not used" in n.ignored[0].reason


def test_pulse_rate_joins_the_vitals_of_its_time_and_only_one_is_used() -> None:
    n = normalise_hl7(oru("OBX|1|NM|150456^MDC_PULS_OXIM_SAT_O2^MDC||93|262688^MDC_DIM_PERCENT^MDC|||||R",
                          f"OBX|2|NM|149530^MDC_PULS_OXIM_PULS_RATE^MDC||121|{BPM}|||||R",
                          f"OBX|3|NM|149546^MDC_PULS_RATE_NON_INV^MDC||118|{BPM}|||||R"))
    [ev] = n.events
    assert isinstance(ev, VitalSigns) and ev.spo2 is not None and ev.heart_rate is not None
    assert ev.heart_rate.value == 121 and "pulse rate" in (ev.provenance.assumption or "")
    assert n.units == 3 and n.accepted == 2 and len(n.ignored) == 1 and "MDC_PULS_RATE_NON_INV" in n.ignored[0].reason


# ---------------------------------------------------------------- times


def test_a_time_without_offset_is_read_in_the_source_time_zone() -> None:
    obx = f"OBX|1|NM|150021^MDC_PRESS_BLD_NONINV_SYS^MDC||80|{MMHG}|||||R|||20240115100000"
    winter = _vitals(oru(obx, msh_time="20240115100000", obr_time=""), tz="Europe/Berlin")
    assert winter.time == datetime(2024, 1, 15, 9, 0, tzinfo=UTC) and winter.time.utcoffset() == timedelta(hours=1)
    summer = _vitals(oru(obx.replace("20240115", "20240715"), obr_time=""), tz="Europe/Berlin")
    assert summer.time == datetime(2024, 7, 15, 8, 0, tzinfo=UTC)
    assert winter.provenance.assumption is None


def test_without_a_time_zone_a_time_without_offset_is_rejected_and_says_how_to_fix_it() -> None:
    n = normalise_hl7(oru(f"OBX|1|NM|150021^MDC_PRESS_BLD_NONINV_SYS^MDC||80|{MMHG}|||||R|||20240115100000"))
    assert not n.events and "has no UTC offset" in n.rejected[0].reason and "--hl7-timezone" in n.rejected[0].reason


def test_a_local_time_in_the_dst_gap_is_rejected() -> None:
    n = normalise_hl7(oru(f"OBX|1|NM|150021^MDC_PRESS_BLD_NONINV_SYS^MDC||80|{MMHG}|||||R|||20240331023000"),
                      tz="Europe/Berlin")
    assert not n.events and "does not exist in Europe/Berlin" in n.rejected[0].reason


def test_a_local_time_that_occurs_twice_is_read_as_the_earlier_and_says_so() -> None:
    ev = _vitals(oru(f"OBX|1|NM|150021^MDC_PRESS_BLD_NONINV_SYS^MDC||80|{MMHG}|||||R|||20241027023000"),
                 tz="Europe/Berlin")
    assert ev.time == datetime(2024, 10, 27, 0, 30, tzinfo=UTC)  # 02:30 CEST (+02:00), the first of the two
    assert ev.provenance.assumption is not None and "occurs twice" in ev.provenance.assumption


def test_an_explicit_offset_wins_over_the_time_zone() -> None:
    ev = _vitals(oru(f"OBX|1|NM|150021^MDC_PRESS_BLD_NONINV_SYS^MDC||80|{MMHG}|||||R|||20240115100000-0500"),
                 tz="Europe/Berlin")
    assert ev.time == datetime(2024, 1, 15, 15, 0, tzinfo=UTC)


def test_an_unknown_time_zone_is_refused_by_the_cli_and_the_settings() -> None:
    with pytest.raises(ValueError, match="unknown IANA time zone"):
        zone("Europe/Atlantis")
    with pytest.raises(SystemExit):
        main(["replay", "x.hl7", "--hl7-timezone", "Mars/Olympus"])
    with pytest.raises(SettingsError, match="HL7 time zone"):
        from_env({"CRSWATCH_HL7_TIMEZONE": "Europe/Atlantis"})
    assert from_env({"CRSWATCH_HL7_TIMEZONE": "Europe/Berlin"}).hl7_timezone == "Europe/Berlin"


def test_replay_reads_local_hl7_times_with_the_time_zone_option(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "monitor.hl7"
    f.write_text(oru(f"OBX|1|NM|150021^MDC_PRESS_BLD_NONINV_SYS^MDC||80|{MMHG}|||||R|||20240115100000",
                     msh_time="20240115100000", obr_time=""))
    assert main(["replay", str(f), "--format", "text"]) == 1  # nothing applied: the exit status says so
    err = capsys.readouterr().err
    assert "1 rejected" in err and "no UTC offset" in err
    assert main(["replay", str(f), "--hl7-timezone", "Europe/Berlin"]) == 0
    err = capsys.readouterr().err
    assert "1 applied" in err and "0 rejected" in err


LAB = "\r".join([
    "MSH|^~\\&|LIS|LAB|CRSWATCH|HOSP|20240102140000+0000||ORU^R01^ORU_R01|L1|P|2.5.1",
    "PID|||MRN123^^^HOSP^MR",
    "OBR|1|||58410-2^CBC panel^LN",
    "OBX|1|NM|26464-8^WBC^LN||0.4|10*3/uL^^UCUM|||||F",
    "SPM|1|||119297000^Blood specimen^SCT|||||||||||||20240102061500+0000&S",
])


def test_lab_time_is_the_specimen_collection_before_the_message_time() -> None:
    oru_ = parse_oru(LAB)
    assert oru_.specimen_times == ["20240102061500+0000"]
    n = normalise_hl7(LAB)
    [ev] = n.events
    assert isinstance(ev, LabResult) and ev.analyte.value == "wbc"
    assert ev.time == datetime(2024, 1, 2, 6, 15, tzinfo=UTC)


def test_obr_7_still_wins_over_spm_17() -> None:
    n = normalise_hl7(LAB.replace("OBR|1|||58410-2^CBC panel^LN", "OBR|1|||58410-2^CBC panel^LN|||20240102060000+0000"))
    assert n.events[0].time == datetime(2024, 1, 2, 6, 0, tzinfo=UTC)


def test_spm_17_of_another_order_is_not_used() -> None:
    text = LAB.replace("SPM|1|", "OBR|2|||24323-8^CMP^LN\rSPM|1|")
    assert normalise_hl7(text).events[0].time == datetime(2024, 1, 2, 14, 0, tzinfo=UTC)  # MSH-7


# ---------------------------------------------------------------- silent losses


def _monitor(sbp: int, minute: int, app: str = "MONITOR") -> str:
    t = f"202401021{minute:03d}00+0000"[:19]
    return "\r".join([f"MSH|^~\\&|{app}|ICU|CRSWATCH|HOSP|{t}||ORU^R01^ORU_R01|msgId0|P|2.6",
                      "PID|||MRN123^^^HOSP^MR", f"OBR|1|||182777000^monitoring of patient^SCT|||{t}",
                      f"OBX|1|NM|150021^MDC_PRESS_BLD_NONINV_SYS^MDC||{sbp}|{MMHG}|||||R|||{t}"])


def test_two_senders_reusing_a_control_id_lose_no_reading() -> None:
    r = Replayer()
    r.feed_normalised(normalise_hl7(_monitor(95, 0)))
    r.feed_normalised(normalise_hl7(_monitor(82, 5)))  # the second reading, same MSH-3 and MSH-10
    assert r.outcomes["applied"] == 2 and r.outcomes["duplicate"] == 0
    hypotension = r.logs["MRN123"].state.hypotension
    assert hypotension is not None and hypotension.value == 82 and hypotension.present


def test_the_same_message_sent_twice_is_one_event() -> None:
    first, again = normalise_hl7(_monitor(95, 0)), normalise_hl7(_monitor(95, 0))
    assert first.events[0].event_id == again.events[0].event_id
    assert first.events[0].event_id.startswith("hl7/MONITOR/msgId0/1/")
    r = Replayer()
    r.feed_normalised(first)
    r.feed_normalised(again)
    assert r.outcomes["applied"] == 1 and r.outcomes["duplicate"] == 1


def test_an_oru_without_obx_is_counted_as_ignored() -> None:
    text = "\r".join(["MSH|^~\\&|MONITOR|ICU|CRSWATCH|HOSP|20240102100000+0000||ORU^R01|m7|P|2.6",
                      "PID|||MRN123^^^HOSP^MR", "OBR|1|||182777000^monitoring of patient^SCT"])
    n = normalise_hl7(text, "feed")
    assert n.units == 1 and not n.events and not n.rejected and len(n.ignored) == 1
    assert n.ignored[0].reason == "ORU^R01 without OBX (MSH-10 'm7'): no observation"
    r = Replayer()
    r.feed_normalised(n)
    assert r.outcomes["ignored"] == 1


def test_event_ids_are_stable_json_safe_strings() -> None:
    ev = normalise_hl7(_monitor(95, 0)).events[0]
    assert json.loads(ev.model_dump_json())["event_id"] == ev.event_id and len(ev.event_id.rsplit("/", 1)[1]) == 12


def test_grade_uses_the_cuff_reading_time() -> None:
    r = Replayer()
    r.feed_normalised(run(med("1986438", rid="cart", effectiveDateTime="2024-01-01T00:00:00+00:00",
                                 subject={"reference": "Patient/MRN123"})))
    records = r.feed_normalised(normalise_hl7(oru(
        f"OBX|1|NM|150364^MDC_TEMP_BODY^MDC||39.2|{DEGC}|||||R|||20240102100000+0000",
        f"OBX|2|NM|150301^MDC_PRESS_CUFF_SYS^MDC||80|{MMHG}|||||R|||20240102100000+0000")))
    changes = [x for x in records if isinstance(x, CrsGradeChange)]
    assert changes and changes[-1].grade == 2 and changes[-1].day == 1
    assert any("80" in line for line in changes[-1].evidence)


def test_the_mllp_listener_reads_local_times_in_its_time_zone_and_acks_an_oru_without_obx() -> None:
    import io

    from streams.mllp import JsonlSink, Listener

    out, errors = io.StringIO(), io.StringIO()
    local = oru(f"OBX|1|NM|150301^MDC_PRESS_CUFF_SYS^MDC|1.1.9.150301|80|{MMHG}|||||R|||20240115100000",
                msh_time="20240115100000", obr_time="")
    ack = Listener(JsonlSink(out, errors), hl7_timezone="America/New_York").process(local.encode(), "peer")
    assert "MSA|AA|MSG1" in ack and json.loads(out.getvalue())["time"].startswith("2024-01-15T10:00:00-05:00")
    no_obx = "\r".join(local.split("\r")[:3])
    plain = Listener(JsonlSink(io.StringIO(), io.StringIO()))
    assert "MSA|AA|MSG1" in plain.process(no_obx.encode(), "peer")
    assert plain.units == {"accepted": 0, "rejected": 0, "ignored": 1}
    assert "MSA|AE|MSG1" in plain.process(local.encode(), "peer")  # no zone: the local time is rejected
