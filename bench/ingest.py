"""Ingest benchmark: FHIR R4 resources/s and HL7 v2 OBX segments/s through the adapters, on one core.

Inputs are built before timing: a deterministic mix of FHIR resources as NDJSON lines
(vital signs, blood-pressure panels, pulse oximetry with an oxygen-flow component, labs
with and without comparators, oxygen methods, infusion segments, doses) and HL7 v2 ORU^R01
messages (PCD-01 monitor messages with device headers, and lab messages). Timed: bytes in,
validated native events out (`streams.feeds.fhir.normalise_fhir`, `streams.feeds.hl7v2.normalise_hl7`),
one call per resource line / per message, as the streaming agent calls them. For scale,
the same inputs are also parsed with fhir.resources (R4B) and python-hl7 alone.

    .venv/bin/python bench/ingest.py                 # 40,000 resources, 5,000 messages (~1 min)
    .venv/bin/python bench/ingest.py --quick         # a tenth of that
    .venv/bin/python bench/ingest.py --json out.json
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from streams.feeds.fhir import normalise_fhir
from streams.feeds.hl7v2 import normalise_hl7

UCUM = "http://unitsofmeasure.org"
T0 = datetime(2024, 1, 1, 8, 0, tzinfo=UTC)


def _q(value: float, unit: str) -> dict[str, Any]:
    return {"value": value, "unit": unit, "system": UCUM, "code": unit}


def _obs(rid: str, pid: str, t: datetime, code: str, **kw: Any) -> dict[str, Any]:
    return {"resourceType": "Observation", "id": rid, "meta": {"versionId": "1"}, "status": "final",
            "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category",
                                      "code": "vital-signs"}]}],
            "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
            "subject": {"reference": f"Patient/{pid}"}, "effectiveDateTime": t.isoformat(), **kw}


def fhir_resources(n: int, seed: int = 7) -> list[str]:
    rng = random.Random(seed)
    out: list[str] = []
    for i in range(n):
        pid, t, rid = f"p{i % 200}", T0 + timedelta(minutes=i), f"r{i}"
        kind = rng.random()
        if kind < 0.35:
            code, unit, value = rng.choice([("8310-5", "Cel", 38.2), ("8867-4", "/min", 96), ("9279-1", "/min", 22),
                                            ("8310-5", "[degF]", 100.9)])
            res = _obs(rid, pid, t, code, valueQuantity=_q(value, unit))
        elif kind < 0.5:
            res = _obs(rid, pid, t, "85354-9", component=[
                {"code": {"coding": [{"system": "http://loinc.org", "code": c}]}, "valueQuantity": _q(v, "mm[Hg]")}
                for c, v in (("8480-6", rng.randint(70, 130)), ("8462-4", rng.randint(40, 80)))])
        elif kind < 0.6:
            res = _obs(rid, pid, t, "59408-5", valueQuantity=_q(rng.randint(85, 99), "%"), component=[
                {"code": {"coding": [{"system": "http://loinc.org", "code": "3151-8"}]},
                 "valueQuantity": _q(rng.choice([2, 4, 8]), "L/min")}])
        elif kind < 0.8:
            code, unit, value = rng.choice([("2276-4", "ng/mL", 12000), ("1988-5", "mg/dL", 9.5),
                                            ("3255-7", "g/L", 1.2), ("777-3", "10*9/L", 40)])
            q = _q(value, unit) | ({"comparator": ">"} if rng.random() < 0.1 else {})
            res = _obs(rid, pid, t, code, valueQuantity=q, issued=(t + timedelta(hours=2)).isoformat())
            res["category"][0]["coding"][0]["code"] = "laboratory"
        elif kind < 0.85:
            res = _obs(rid, pid, t, "107117-4", valueCodeableConcept={
                "coding": [{"system": "http://snomed.info/sct", "code": rng.choice(["336623009", "426854004"])}]})
        else:
            drug = rng.choice([("7512", "ug/min", 8.0), ("11149", "U/min", 0.03), ("612865", None, 8.0)])
            res = {"resourceType": "MedicationAdministration", "id": rid, "subject": {"reference": f"Patient/{pid}"},
                   "medicationCodeableConcept": {"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm",
                                                             "code": drug[0]}]}}
            if drug[1] is None:
                res |= {"status": "completed", "effectiveDateTime": t.isoformat(),
                        "dosage": {"dose": _q(drug[2], "mg/kg")}}
            else:
                res |= {"status": "in-progress", "effectivePeriod": {"start": t.isoformat()},
                        "dosage": {"rateQuantity": _q(drug[2], drug[1])}}
        out.append(json.dumps(res, separators=(",", ":")))
    return out


def hl7_messages(n: int, seed: int = 7) -> tuple[list[str], int]:
    rng = random.Random(seed)
    out: list[str] = []
    obx_total = 0
    for i in range(n):
        t = (T0 + timedelta(minutes=i)).strftime("%Y%m%d%H%M%S+0000")
        head = [f"MSH|^~\\&|GATEWAY|ICU|CRSWATCH|HOSP|{t}||ORU^R01^ORU_R01|M{i}|P|2.6", f"PID|||MRN{i % 200}^^^H^MR",
                f"OBR|1|||182777000^monitoring of patient^SCT|||{t}"]
        if rng.random() < 0.8:
            obx = ["OBX|1||69965^MDC_DEV_MON_PHYSIO_MULTI_PARAM_MDS^MDC|1.0.0.0|||||||X",
                   f"OBX|2|NM|147842^MDC_ECG_HEART_RATE^MDC|1.1.1.1|{rng.randint(60, 140)}|"
                   f"264864^MDC_DIM_BEAT_PER_MIN^MDC|||||R|||{t}",
                   f"OBX|3|NM|150021^MDC_PRESS_BLD_NONINV_SYS^MDC|1.2.1.1|{rng.randint(70, 130)}|"
                   f"266016^MDC_DIM_MMHG^MDC|||||R|||{t}",
                   f"OBX|4|NM|150022^MDC_PRESS_BLD_NONINV_DIA^MDC|1.2.1.2|{rng.randint(40, 80)}|"
                   f"266016^MDC_DIM_MMHG^MDC|||||R|||{t}",
                   f"OBX|5|NM|150023^MDC_PRESS_BLD_NONINV_MEAN^MDC|1.2.1.3|{rng.randint(55, 95)}|"
                   f"266016^MDC_DIM_MMHG^MDC|||||R|||{t}",
                   f"OBX|6|NM|150456^MDC_PULS_OXIM_SAT_O2^MDC|1.3.1.1|{rng.randint(85, 99)}|"
                   f"262688^MDC_DIM_PERCENT^MDC|||||R|||{t}",
                   f"OBX|7|NM|151562^MDC_RESP_RATE^MDC|1.4.1.1|{rng.randint(12, 30)}|"
                   f"264928^MDC_DIM_RESP_PER_MIN^MDC|||||R|||{t}",
                   f"OBX|8|NM|150364^MDC_TEMP_BODY^MDC|1.5.1.1|{rng.choice([36.9, 38.4, 39.6])}|"
                   f"268192^MDC_DIM_DEGC^MDC|||||R|||{t}"]
        else:
            obx = [f"OBX|1|SN|2276-4^Ferritin^LN||>^{rng.randint(500, 200000)}|ng/mL^^UCUM|||||F|||{t}",
                   f"OBX|2|NM|1988-5^CRP^LN||{rng.randint(1, 30)}|mg/dL^^UCUM|||||F|||{t}",
                   f"OBX|3|NM|3255-7^Fibrinogen^LN||{rng.randint(50, 400)}|mg/dL^^UCUM|||||F|||{t}"]
        obx_total += len(obx)
        out.append("\r".join(head + obx) + "\r")
    return out, obx_total


def timed(fn: Callable[[], int], repeats: int) -> tuple[list[float], int]:
    """Seconds of each of `repeats` runs of fn (which returns a count to check)."""
    times, count = [], 0
    for _ in range(repeats):
        gc.collect()
        start = time.perf_counter()
        count = fn()
        times.append(time.perf_counter() - start)
    return times, count


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--resources", type=int, default=40_000)
    ap.add_argument("--messages", type=int, default=5_000)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="a tenth of the inputs, one repeat")
    ap.add_argument("--no-libraries", action="store_true", help="skip the fhir.resources / python-hl7 comparison")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    if args.quick:
        args.resources, args.messages, args.repeats = args.resources // 10, args.messages // 10, 1
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core

    lines = fhir_resources(args.resources)
    messages, obx = hl7_messages(args.messages)

    def fhir() -> int:
        events = 0
        for line in lines:
            n = normalise_fhir(line, "bench")
            assert not n.rejected, n.rejected[0].reason
            events += len(n.events)
        return events

    def hl7() -> int:
        units = 0
        for m in messages:
            n = normalise_hl7(m, "bench")
            assert not n.rejected, n.rejected[0].reason
            units += n.units
        return units

    # Alternating the two, so that a slow spell of this shared machine hits both alike.
    fhir_s: list[float] = []
    hl7_s: list[float] = []
    fhir_events = hl7_units = 0
    for _ in range(args.repeats):
        times, fhir_events = timed(fhir, 1)
        fhir_s += times
        times, hl7_units = timed(hl7, 1)
        hl7_s += times
    assert hl7_units == obx
    figures: dict[str, Any] = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python "
                   f"{platform.python_version()}, one core pinned",
        "fhir_resources": len(lines), "fhir_events": fhir_events,
        "repeats": args.repeats,
        "fhir_resources_per_s": round(len(lines) / statistics.median(fhir_s)),
        "fhir_resources_per_s_best": round(len(lines) / min(fhir_s)),
        "fhir_resources_per_s_worst": round(len(lines) / max(fhir_s)),
        "hl7_messages": len(messages), "hl7_obx": obx,
        "hl7_obx_per_s": round(obx / statistics.median(hl7_s)),
        "hl7_obx_per_s_best": round(obx / min(hl7_s)),
        "hl7_obx_per_s_worst": round(obx / max(hl7_s)),
        "hl7_messages_per_s": round(len(messages) / statistics.median(hl7_s)),
    }
    if not args.no_libraries:
        import hl7 as python_hl7  # type: ignore[import-untyped]
        from fhir.resources.R4B.medicationadministration import MedicationAdministration
        from fhir.resources.R4B.observation import Observation

        sample = lines[: max(1, len(lines) // 10)]
        models = {"Observation": Observation, "MedicationAdministration": MedicationAdministration}

        def fhir_resources_lib() -> int:
            for line in sample:
                obj = json.loads(line)
                models[obj["resourceType"]].model_validate(obj)
            return len(sample)

        msample = messages[: max(1, len(messages) // 10)]

        def python_hl7_parse() -> int:
            for m in msample:
                python_hl7.parse(m)
            return len(msample)

        lib_s, _ = timed(fhir_resources_lib, 1)
        ph_s, _ = timed(python_hl7_parse, 1)
        figures["fhir.resources_validate_per_s"] = round(len(sample) / lib_s[0])
        figures["python_hl7_parse_obx_per_s"] = round(obx / len(messages) * len(msample) / ph_s[0])
    for k, v in figures.items():
        print(f"{k:32} {v:,}" if isinstance(v, int) else f"{k:32} {v}")
    def verdict(suffix: str) -> str:
        ok = figures[f"fhir_resources_per_s{suffix}"] >= 20_000 and figures[f"hl7_obx_per_s{suffix}"] >= 20_000
        return "met" if ok else "NOT met"

    print(f"targets (>= 20,000 FHIR resources/s and >= 20,000 HL7 OBX/s): {verdict('')} at the median of "
          f"{args.repeats} repeats, {verdict('_best')} at the best, {verdict('_worst')} at the worst")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
