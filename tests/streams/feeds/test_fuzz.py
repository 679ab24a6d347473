"""Fuzzing the adapters: arbitrary bytes and mutated valid inputs never crash, never pass when they break
the contract, and every input ends as events, as ignored or as a rejection with a reason (counts add up)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from models.events import REJECT_CATEGORIES, parse_event
from models.vocabulary import DrugClass, drug_class
from streams.feeds.export import to_fhir, to_hl7
from streams.feeds.fhir import normalise_fhir
from streams.feeds.hl7v2 import normalise_hl7
from streams.feeds.inputs import normalise
from streams.feeds.normalised import Normalised
from streams.feeds.terminology import LOINC_CODES
from tests.streams.feeds.test_hl7v2 import PCD01

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
CASES = Path(__file__).resolve().parents[3] / "cases"
_EVENTS = [parse_event(line) for p in sorted(CASES.glob("*.jsonl")) for line in p.read_text().splitlines() if line]
VALID_RESOURCES: list[dict[str, Any]] = []
for _ev in _EVENTS:
    _res, _standard = to_fhir(_ev)
    if _standard:
        _res.pop("extension")  # as a hospital sends them
        VALID_RESOURCES.append(_res)
VALID_MESSAGES = [PCD01] + [m for n, e in enumerate(_EVENTS) if (m := to_hl7(e, f"f{n}")) is not None]


def well_formed(n: Normalised) -> None:
    assert n.units == n.accepted + len(n.rejected) + len(n.ignored)
    for r in n.rejected:
        assert r.reason.strip() and r.category in REJECT_CATEGORIES and r.dead_letter()["reason"] == r.reason
    for e in n.events:
        assert e.time.tzinfo is not None and e.patient_id
        assert parse_event(e.model_dump(mode="json")) is not None  # the native model's own checks hold


@FUZZ
@given(st.binary(max_size=2000))
def test_arbitrary_bytes_never_crash(data: bytes) -> None:
    for fmt in ("fhir", "hl7v2", "native", None):
        n = normalise(data, fmt)  # type: ignore[arg-type]
        well_formed(n)
        assert n.units >= 1 or not data.strip()


@FUZZ
@given(st.text(max_size=500))
def test_arbitrary_text_after_msh_never_crashes(text: str) -> None:
    well_formed(normalise_hl7("MSH|^~\\&|" + text))
    well_formed(normalise_hl7("MSH|^~\\&|A|B|C|D|20240101000000+0000||ORU^R01|1|P|2.6\rPID|||X\r" + text))


_JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
                     lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=10), c, max_size=3),
                     max_leaves=8)


def _paths(obj: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix] if prefix else []
    if isinstance(obj, dict):
        for k, v in obj.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            out += _paths(v, (*prefix, i))
    return out


def _set(obj: Any, path: tuple[Any, ...], value: Any, delete: bool = False) -> None:
    for key in path[:-1]:
        obj = obj[key]
    if delete:
        del obj[path[-1]]
    else:
        obj[path[-1]] = value


@FUZZ
@given(st.sampled_from(VALID_RESOURCES), st.data())
def test_mutated_resources_never_crash_and_accepted_ones_keep_the_contract(res: dict[str, Any],
                                                                            data: st.DataObject) -> None:
    res = copy.deepcopy(res)
    for _ in range(data.draw(st.integers(1, 3))):
        paths = _paths(res)
        if not paths:
            break
        path = data.draw(st.sampled_from(paths))
        if data.draw(st.booleans()):
            _set(res, path, None, delete=True)
        else:
            _set(res, path, data.draw(_JSON))
    n = normalise_fhir(json.dumps(res), "fuzz")
    well_formed(n)
    assert n.units == 1
    if n.events and n.events[0].kind != "retract":
        ref = res.get("subject", {}).get("reference")
        assert isinstance(ref, str) and all(e.patient_id == ref.removeprefix("Patient/") for e in n.events)
        if res.get("resourceType") == "Observation":
            codes = [c.get("code") for c in res["code"]["coding"] if c.get("system") == "http://loinc.org"]
            assert any(c in LOINC_CODES for c in codes)
            q = res.get("valueQuantity")
            if isinstance(q, dict):
                assert q.get("system") == "http://unitsofmeasure.org"


_BREAKS = {
    "no subject": lambda r: r.pop("subject"),
    "no time": lambda r: [r.pop(k, None) for k in ("effectiveDateTime", "effectivePeriod")],
    "time without offset": lambda r: [r.__setitem__(k, r[k][:19]) for k in ("effectiveDateTime",) if k in r]
    or ("effectivePeriod" in r and r["effectivePeriod"].update({k: v[:19] for k, v in r["effectivePeriod"].items()})),
    "unknown unit": lambda r: [q.update(code="furlong/fortnight") for q in _quantities(r)],
    "not finite": lambda r: [q.update(value=float("nan")) for q in _quantities(r)],
    "negative": lambda r: [q.update(value=-abs(q.get("value", 1)) - 1) for q in _quantities(r)],
    "unknown type": lambda r: r.update(resourceType="Specimens"),  # not FHIR (Specimen is skipped, not monitored)
    "no code": lambda r: [r.pop(k, None) for k in ("code", "medicationCodeableConcept")],
}


def _quantities(res: dict[str, Any]) -> list[dict[str, Any]]:
    qs = [res.get("valueQuantity"), *[c.get("valueQuantity") for c in res.get("component", [])],
          res.get("dosage", {}).get("rateQuantity"), res.get("dosage", {}).get("dose")]
    return [q for q in qs if isinstance(q, dict)]


@FUZZ
@given(st.sampled_from(VALID_RESOURCES), st.sampled_from(sorted(_BREAKS)))
def test_a_contract_break_is_always_rejected(res: dict[str, Any], name: str) -> None:
    res = copy.deepcopy(res)
    before = json.dumps(res)
    _BREAKS[name](res)
    n = normalise_fhir(json.dumps(res), "fuzz")
    well_formed(n)
    if json.dumps(res) == before:
        return  # the break did not apply to this resource (e.g. no quantity on a method of oxygen delivery)
    if name in ("unknown unit", "negative") and n.events and n.events[0].kind == "dose" \
            and (n.events[0].drug_class or drug_class(n.events[0].drug)) is DrugClass.CAR_T:
        # The CAR-T infusion is kept whatever its dose (issue 14); an unreadable dose is left out and said.
        [ev] = n.events
        assert not n.rejected and (ev.unit == "furlong/fortnight" or (ev.dose is None and
                                                                     ev.provenance.assumption is not None))
        return
    assert not n.events and len(n.rejected) == 1, (name, n.events)


@FUZZ
@given(st.sampled_from(VALID_MESSAGES), st.data())
def test_mutated_hl7_messages_never_crash(message: str, data: st.DataObject) -> None:
    segments = [s.split("|") for s in message.strip("\r").split("\r")]
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, len(segments) - 1))
        seg = segments[i]
        j = data.draw(st.integers(1, max(1, len(seg) - 1)))
        if j < len(seg):
            seg[j] = data.draw(st.text(max_size=15) | st.sampled_from(["", "^", "~", "\\", "&", "NaN", "1e999"]))
    mutated = "\r".join("|".join(s) for s in segments)
    n = normalise_hl7(mutated)
    well_formed(n)


@FUZZ
@given(st.sampled_from(VALID_MESSAGES))
def test_hl7_times_without_offset_are_always_rejected(message: str) -> None:
    stripped = message.replace("+0000", "")
    n = normalise_hl7(stripped)
    well_formed(n)
    assert not n.events and n.rejected and all("UTC offset" in r.reason for r in n.rejected)


_HL7_BREAKS: dict[str, tuple[int, str]] = {  # OBX field number -> what it becomes
    "unknown unit": (6, "furlong^furlong^UCUM"),
    "not a number": (5, "abc"),
    "not finite": (5, "1e999"),
    "negative": (5, "-5"),
    "unknown code": (3, "99999-9^Unknown^LN"),
}


@FUZZ
@given(st.sampled_from(VALID_MESSAGES), st.sampled_from(sorted(_HL7_BREAKS)), st.data())
def test_an_hl7_contract_break_rejects_that_observation_and_keeps_the_others(
        message: str, name: str, data: st.DataObject) -> None:
    segments = [s.split("|") for s in message.strip("\r").split("\r")]
    numeric = [i for i, s in enumerate(segments) if s[0] == "OBX" and len(s) > 5 and s[2] in ("NM", "SN") and s[5]]
    if not numeric:
        return  # no numeric observation to break (e.g. a method of oxygen delivery)
    before = normalise_hl7(message)
    assert not before.rejected
    i = data.draw(st.sampled_from(numeric))
    field, value = _HL7_BREAKS[name]
    segments[i][field] = value
    n = normalise_hl7("\r".join("|".join(s) for s in segments))
    well_formed(n)
    assert n.units == before.units and n.accepted == before.accepted - 1 and len(n.rejected) == 1, (name, n.rejected)
    assert n.rejected[0].source.endswith(f"OBX {segments[i][1]}")


@FUZZ
@given(st.sampled_from(VALID_MESSAGES))
def test_an_hl7_message_without_a_patient_is_rejected_whole(message: str) -> None:
    segments = [s.split("|") for s in message.strip("\r").split("\r")]
    pid = next(s for s in segments if s[0] == "PID")
    pid[3] = ""
    n = normalise_hl7("\r".join("|".join(s) for s in segments))
    well_formed(n)
    assert not n.events and n.rejected and all("PID-3" in r.reason for r in n.rejected)
