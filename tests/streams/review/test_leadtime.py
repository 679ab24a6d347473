"""Lead time against the clinicians' escalation, on hand-made patients and on the seed cases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from alerts.config import Thresholds
from models.events import ClinicalEvent, DrugDose, Infusion, OxygenSupport, Provenance
from models.vocabulary import OxygenDevice, VasoactiveAgent
from streams.review.leadtime import AlertRef, Escalation, escalations, lead_times, summarise
from streams.review.run import replay_for_review
from streams.review.series import SeriesBuilder, alerts_of

CASES = Path(__file__).resolve().parents[3] / "cases"
H = 3600.0
DAY0 = datetime(2026, 1, 5, 10, tzinfo=UTC)
P = Provenance(source="test")
_n = iter(range(10**6))


def at(hours: float) -> datetime:
    return DAY0 + timedelta(hours=hours)


def ev(kind: type[Any], hours: float, **kw: Any) -> ClinicalEvent:
    return kind(event_id=f"e{next(_n)}", patient_id="p", time=at(hours), provenance=P, **kw)  # type: ignore[no-any-return]


def alert(kind: str, hours: float, status: str = "firing") -> AlertRef:
    return AlertRef(f"p:{kind}:1:{hours}", kind, "1", "high", status, at(hours).timestamp(), kind)


def toci(hours: float) -> Escalation:
    return Escalation("p", at(hours).timestamp(), "il6_blockade", "tocilizumab")


def test_earliest_related_alert_before_gives_the_lead() -> None:
    rows = lead_times([toci(30)], [alert("crs", 20), alert("oxygen_escalation", 26), alert("icans", 10)])
    assert rows[0].first_before is not None and rows[0].first_before.kind == "crs"
    assert rows[0].lead_s == 10 * H
    assert [a.kind for a in rows[0].before] == ["crs", "oxygen_escalation"]  # icans is not related to tocilizumab
    assert rows[0].last_before is not None and rows[0].last_before.kind == "oxygen_escalation"


def test_a_tie_is_concurrent_not_a_lead() -> None:
    rows = lead_times([toci(30)], [alert("crs", 30)])
    assert rows[0].lead_s is None and not rows[0].preceded
    assert [a.kind for a in rows[0].concurrent] == ["crs"]
    s = summarise(rows)
    assert (s.preceded, s.concurrent_only, s.not_preceded) == (0, 1, 1)


def test_alerts_only_after_and_escalations_not_preceded() -> None:
    rows = lead_times([toci(30)], [alert("crs", 32), alert("vasopressor_escalation", 40), alert("crs", 200)])
    r = rows[0]
    assert not r.preceded and r.lead_s is None
    assert [a.kind for a in r.only_after] == ["crs", "vasopressor_escalation"]  # Day 200 h is beyond 72 h


def test_after_lists_only_kinds_not_seen_before() -> None:
    r = lead_times([toci(30)], [alert("crs", 20), alert("crs", 35), alert("oxygen_escalation", 36)])[0]
    assert [a.kind for a in r.only_after] == ["oxygen_escalation"]


def test_resolved_alerts_de_escalations_and_alerts_outside_the_lookback_do_not_count() -> None:
    down = AlertRef("p:crs:1:down1", "crs", "down1", "info", "firing", at(95).timestamp(), "CRS de-escalated")
    r = lead_times([toci(100)], [alert("crs", 10), alert("crs", 90, status="resolved"), down], lookback_hours=72)[0]
    assert not r.preceded


def test_escalations_from_the_events() -> None:
    b = SeriesBuilder("p")
    for e in (
        ev(DrugDose, 0, drug="tisagenlecleucel"),
        ev(DrugDose, 30, drug="tocilizumab", dose=8, unit="mg/kg"),
        ev(DrugDose, 38, drug="tocilizumab", dose=8, unit="mg/kg"),  # repeat within 24 h: same escalation
        ev(DrugDose, 31, drug="dexamethasone", dose=10, unit="mg"),
        ev(Infusion, 32, action="start", agent=VasoactiveAgent.NOREPINEPHRINE, rate=0.05, unit="ug/kg/min"),
        ev(Infusion, 33, action="start", agent=VasoactiveAgent.VASOPRESSIN, rate=0.03, unit="U/min"),  # not a start
        ev(Infusion, 34, action="start", agent=VasoactiveAgent.DOBUTAMINE, rate=5, unit="ug/kg/min"),  # inotrope
        ev(OxygenSupport, 35, device=OxygenDevice.NASAL_CANNULA, flow_l_min=3),  # low flow: not an escalation
        ev(OxygenSupport, 36, flow_l_min=8),  # the cannula at 8 L/min: ASTCT high flow
        ev(OxygenSupport, 40, device=OxygenDevice.BIPAP),
        ev(DrugDose, 41, drug="anakinra", dose=100, unit="mg"),
        ev(DrugDose, 42, drug="ruxolitinib", dose=10, unit="mg"),  # another drug: another escalation
        ev(DrugDose, 47, drug="anakinra", dose=100, unit="mg"),  # anakinra q6h: the same escalation
    ):
        b.add(e)
    got = [(e.kind, round((e.ts - DAY0.timestamp()) / H)) for e in escalations(b.build())]
    assert got == [("il6_blockade", 30), ("corticosteroid", 31), ("vasopressor_start", 32),
                   ("oxygen_high_flow", 36), ("positive_pressure", 40), ("other_anticytokine", 41),
                   ("other_anticytokine", 42)]


def test_seed_cases_lead_time() -> None:
    rr = replay_for_review([CASES / "ruemmele-2025.jsonl", CASES / "mcnerney-2022.jsonl"], [Thresholds()],
                           progress=False)
    rows = {pid: lead_times(escalations(rr.series[pid]), [AlertRef.of(a) for a in alerts_of(rr.records[0][pid])])
            for pid in rr.patients}
    # case 000 Day +21: the refractory grade-4 alert (08:00) came before siltuximab (13:00)
    silt = next(r for r in rows["ruemmele-2025"] if r.escalation.detail.startswith("siltuximab"))
    assert silt.first_before is not None and silt.lead_s is not None and silt.lead_s > 0
    assert "refractory_crs" in {a.kind for a in silt.before}
    # case 004 Day +9: emapalumab followed the refractory-CRS and IEC-HS alerts
    ema = next(r for r in rows["mcnerney-2022"] if r.escalation.detail.startswith("emapalumab"))
    assert {"refractory_crs", "iec_hs"} <= {a.kind for a in ema.before}
