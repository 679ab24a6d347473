"""Evolve: how each kind of clinical event updates a patient's state. It emits nothing.

The mutator half of the fold (`alerts.fold.apply` decides what to grade and emit after these
run). Each `on_*` handler writes the registers, courses and lab series its event kind touches,
in place. Registers follow the log's total order (event time, event_id): `replaces` keeps a
re-applied or older event from overwriting a newer one, so applying the same event twice is a
no-op. No I/O; imports only `models`, `alerts.config`, `alerts.icans` (ICANS domain findings) and the
ASTCT ladder of `alerts.crs`.
"""

from __future__ import annotations

import math

from alerts.config import Thresholds
from alerts.crs import oxygen_axis
from alerts.icans import add_finding, findings_of
from models.events import (
    Attribution,
    DrugDose,
    Finding,
    Infusion,
    LabResult,
    NeuroAssessment,
    OxygenSupport,
    PatientContext,
    VitalSigns,
)
from models.state import LabPoint, Observation, PatientState, Support, labs_kept
from models.vocabulary import (
    VASOACTIVE_ROLE,
    AttributionTarget,
    DrugClass,
    OxygenDevice,
    VasoactiveAgent,
    VasoactiveRole,
    attributes_to_crs,
    counts_for_crs,
    drug_class,
    names_crs,
)

NEG_INF = float("-inf")
_ALL_TARGETS = ("fever", "hypotension", "oxygen", "vasopressors", "icans", "masking")


def newer(last: float | None, ts: float) -> bool:
    return last is None or ts >= last


def replaces(obs: Observation | None, ts: float, event_id: str) -> bool:
    """Registers follow the log's total order, (event time, event_id): only a strictly newer event
    replaces the value, so re-applying the same event is recognisably a no-op."""
    return obs is None or (ts, event_id) > (obs.ts, obs.event_id)


def on_vitals(s: PatientState, ev: VitalSigns, cfg: Thresholds) -> None:
    ts = ev.ts
    t = ev.temperature
    if t is not None and t.value >= cfg.fever_c:
        if replaces(s.fever, ts, ev.event_id):
            s.fever = Observation(ts, True, t.value, ev.event_id, "temperature")
        m = s.max_fever_c
        if m is None or (ts >= m[0] and (t.value >= m[1] or ts - m[0] > cfg.fever_window_hours * 3600)):
            s.max_fever_c = (ts, t.value)
    if t is not None:
        m = s.max_temp_c
        if m is None or (ts >= m[0] and (t.value >= m[1] or ts - m[0] > cfg.fever_window_hours * 3600)):
            s.max_temp_c = (ts, t.value)
    bp = blood_pressure(ev, cfg)
    if bp is not None and _bp_replaces(s.hypotension, ts, bp[0], ev.event_id):
        low, value, label = bp
        if low or _ends_hypotension(s.hypotension, ev):
            s.hypotension = Observation(ts, low, value, ev.event_id, label)
    if bp is not None and bp[0] and replaces(s.hypotension_last, ts, ev.event_id):
        s.hypotension_last = Observation(ts, True, bp[1], ev.event_id, bp[2])


def _ends_hypotension(cur: Observation | None, ev: VitalSigns) -> bool:
    """Whether a reading that is not low ends the current hypotension: it must measure what showed it.
    A normal MAP alone says nothing of an SBP < 90, nor an SBP alone of a MAP < 65."""
    if cur is None or not cur.present:
        return True
    if cur.label == "SBP":
        return ev.sbp is not None
    if cur.label.endswith("MAP"):
        return ev.map is not None or (ev.sbp is not None and ev.dbp is not None)
    return True  # documented hypotension: any reading


def blood_pressure(ev: VitalSigns, cfg: Thresholds) -> tuple[bool, float, str] | None:
    """(hypotensive, value, label) of a reading, or None when it cannot say.

    Hypotension: SBP < hypotension_sbp_below, or (IN-HOUSE) MAP < hypotension_map_below, the measured
    MAP or, without one, DBP + (SBP - DBP) / 3 from the same reading.
    """
    sbp = ev.sbp.value if ev.sbp is not None else None
    mean: float | None = None
    label = "MAP"
    if ev.map is not None:
        mean = ev.map.value
    elif sbp is not None and ev.dbp is not None:
        dbp = ev.dbp.value
        mean, label = round(dbp + (sbp - dbp) / 3, 1), f"BP {sbp:g}/{dbp:g}, computed MAP"
    limit = cfg.hypotension_map_below
    if sbp is not None and sbp < cfg.hypotension_sbp_below:
        return True, sbp, "SBP"
    if mean is not None and limit is not None and mean < limit:
        return True, mean, label
    if sbp is not None:
        return False, sbp, "SBP"
    if mean is not None and limit is not None:
        return False, mean, "MAP"
    return None


def _bp_replaces(obs: Observation | None, ts: float, present: bool, event_id: str) -> bool:
    """Like `replaces`, but two blood-pressure states of the same instant are ordered by content
    first: hypotension wins over a normal reading whatever the event ids (the worse reading, as a
    missed grade is the worse error), so the grade does not depend on id spelling."""
    return obs is None or (ts, present, event_id) > (obs.ts, obs.present, obs.event_id)


def on_finding(s: PatientState, ev: Finding, cfg: Thresholds) -> None:
    ts = ev.ts
    kind = ev.finding.value
    if kind in ("fever", "hypotension") and ev.present and not counts_for_crs(ev.reason, cfg.non_crs_causes):
        # Documented as due to something else (e.g. sepsis): kept, but not a CRS sign.
        if replaces(s.findings.get(kind), ts, ev.event_id):
            s.findings[kind] = Observation(ts, True, None, ev.event_id, f"documented {kind} ({ev.reason})")
        return
    if kind == "fever":
        if ev.present:
            if replaces(s.fever, ts, ev.event_id):
                s.fever = Observation(ts, True, None, ev.event_id, "documented fever")
        elif s.afebrile_ts is None or ts >= s.afebrile_ts:
            s.afebrile_ts = ts
        return
    if kind == "hypotension":
        if _bp_replaces(s.hypotension, ts, ev.present, ev.event_id):
            label = "documented hypotension" if ev.present else "documented normotension"
            s.hypotension = Observation(ts, ev.present, None, ev.event_id, label)
        if ev.present and replaces(s.hypotension_last, ts, ev.event_id):
            s.hypotension_last = Observation(ts, True, None, ev.event_id, "documented hypotension")
        return
    if replaces(s.findings.get(kind), ts, ev.event_id):
        label = f"documented {kind}" + (f" ({ev.reason})" if kind == "infection" and ev.reason else "")
        s.findings[kind] = Observation(ts, ev.present, None, ev.event_id, label)


def on_oxygen(s: PatientState, ev: OxygenSupport) -> None:
    if not newer(s.oxygen_changed, ev.ts):
        return
    if ev.device is None:
        on_oxygen_reading(s, ev)
        return
    cur = s.oxygen
    if (ev.ts == s.oxygen_changed and cur is not None and cur.name != OxygenDevice.UNSPECIFIED.value
            and oxygen_axis(ev.device, ev.flow_l_min)[0] < oxygen_axis(OxygenDevice(cur.name), cur.flow_l_min)[0]):
        return  # two devices charted at one instant: the higher support counts, whatever the event ids
    s.oxygen_changed = ev.ts
    s.support_version += 1
    if ev.device is OxygenDevice.ROOM_AIR:
        s.oxygen = None
        return
    if s.oxygen is None:
        s.oxygen_course += 1
    same_device = s.oxygen is not None and s.oxygen.name == ev.device.value
    since = s.oxygen.since if s.oxygen is not None and same_device else ev.ts
    # A documented reason stays with the same device until a row gives another one.
    kept = s.oxygen if ev.reason is None and same_device else None
    reason = kept.reason if kept is not None else ev.reason
    attributed = kept is not None and kept.attributed
    flow, flow_ts = ev.flow_l_min, ev.ts if ev.flow_l_min is not None else None
    if flow is None and s.oxygen is not None and s.oxygen.flow_ts == ev.ts:
        # A flow reading of the same event time as this device describes the same moment
        # (separate FHIR Observations): keep it, whichever of the two was applied first.
        flow, flow_ts = s.oxygen.flow_l_min, ev.ts
    s.oxygen = Support(
        name=ev.device.value,
        since=since,
        changed=ev.ts,
        event_id=ev.event_id,
        flow_l_min=flow,
        reason=reason,
        attributed=attributed,
        flow_ts=flow_ts,
    )


def on_oxygen_reading(s: PatientState, ev: OxygenSupport) -> None:
    """A flow (or FiO2) reading without a device: it updates the running support's flow.

    With no support running, a flow above 0 L/min is supplemental oxygen whose device is
    not documented (OxygenDevice.UNSPECIFIED: graded at least 2 and flagged uncertain). FiO2
    is not an ASTCT grading input, so an FiO2-only reading changes nothing.
    """
    flow = ev.flow_l_min
    if flow is None:
        return
    cur = s.oxygen
    if cur is None:
        if flow <= 0:
            return
        s.oxygen_course += 1
        s.oxygen = Support(name=OxygenDevice.UNSPECIFIED.value, since=ev.ts, changed=ev.ts, event_id=ev.event_id,
                           flow_l_min=flow, flow_ts=ev.ts)
    elif cur.flow_l_min == flow and cur.flow_ts == ev.ts:
        return
    else:
        cur.flow_l_min, cur.flow_ts, cur.changed = flow, ev.ts, ev.ts
    s.oxygen_changed = ev.ts
    s.support_version += 1


def vasopressors_running(s: PatientState) -> int:
    return sum(1 for a in s.infusions if VASOACTIVE_ROLE[VasoactiveAgent(a)] is not VasoactiveRole.INOTROPE)


def paused(ev: Infusion) -> bool:
    """A documented hold, or a start or rate change to rate 0: the agent is not running."""
    return ev.action == "hold" or (ev.action != "stop" and ev.rate == 0)


def on_infusion(s: PatientState, ev: Infusion) -> tuple[str, bool] | None:
    """Returns (agent, started) when the set of running agents or a dose changed."""
    agent = ev.agent.value
    if not newer(s.infusion_changed.get(agent), ev.ts):
        return None
    running = s.infusions.get(agent)
    held = s.infusions_paused.get(agent)
    segment = running.segment if running is not None else held.segment if held is not None else None
    if (ev.action == "stop" and ev.logical_id is not None
            and segment is not None and segment != ev.logical_id):
        return None  # the end of an earlier segment: a newer segment of the agent replaced it and runs on
    if (ev.action == "stop" and running is not None and running.changed == ev.ts
            and (ev.logical_id is None or running.segment != ev.logical_id)):
        # Started or changed at this very instant by another record: the running one wins whichever
        # was applied first (a stop applied first is restarted by the start anyway).
        return None
    s.infusion_changed[agent] = ev.ts
    s.support_version += 1
    if ev.action == "stop" or paused(ev):
        s.infusions_paused.pop(agent, None)
        if paused(ev):
            kept = running or held
            s.infusions_paused[agent] = Support(
                name=agent, since=ev.ts, changed=ev.ts, event_id=ev.event_id, rate=ev.rate, unit=ev.unit,
                reason=ev.reason if ev.reason is not None or kept is None else kept.reason,
                attributed=ev.reason is None and kept is not None and kept.attributed, segment=ev.logical_id)
        if running is None:
            return None
        del s.infusions[agent]
        return agent, False
    if running is None:
        if held is not None and ev.action == "rate_change" and ev.rate is None:
            return None  # a note on a paused infusion gives no rate: it stays paused
        s.infusions_paused.pop(agent, None)
        inotrope = VASOACTIVE_ROLE[ev.agent] is VasoactiveRole.INOTROPE
        pressors = vasopressors_running(s)
        if not inotrope and pressors == 0:
            s.vaso_course += 1
            s.nee_min = None
        if inotrope and len(s.infusions) == pressors:  # no inotrope running yet
            s.inotrope_course += 1
        # Restarted after a pause: the reason documented for it (or a clinician's attribution) stays.
        s.infusions[agent] = Support(
            name=agent,
            since=ev.ts,
            changed=ev.ts,
            event_id=ev.event_id,
            rate=ev.rate,
            unit=ev.unit,
            reason=ev.reason if ev.reason is not None or held is None else held.reason,
            attributed=ev.reason is None and held is not None and held.attributed,
            at_max_dose=ev.at_max_dose,
            segment=ev.logical_id,
        )
        return agent, True
    running.changed = ev.ts
    running.event_id = ev.event_id
    running.segment = ev.logical_id
    if ev.rate is not None:
        running.rate, running.unit = ev.rate, ev.unit
    if ev.reason is not None:
        running.reason, running.attributed = ev.reason, False
    running.at_max_dose = ev.at_max_dose
    return agent, False


def on_dose(s: PatientState, ev: DrugDose, cfg: Thresholds) -> None:
    cls = ev.drug_class or drug_class(ev.drug)
    ts = ev.ts
    if cls is DrugClass.CAR_T:
        if s.day0_ts is None or ts < s.day0_ts:
            s.day0_ts = ts
            offset = ev.time.utcoffset()
            s.day0_offset_min = int(offset.total_seconds() // 60) if offset is not None else None
        return
    if cls is DrugClass.FLUID_BOLUS:
        # Given for a non-CRS cause (e.g. 'sepsis'), it does not hold CRS hypotension.
        if counts_for_crs(ev.reason, cfg.non_crs_causes) and replaces(s.fluid_bolus, ts, ev.event_id):
            s.fluid_bolus = Observation(ts, True, ev.dose, ev.event_id, ev.drug)
        return
    in_episode = s.crs_grade > 0
    # ASTCT: a patient with CRS who then receives tocilizumab or steroids no longer needs fever for
    # the grade: the drug masks fever whatever it was given for, so the waiver ignores the reason.
    # Every masking dose is kept, in or out of an episode: whether it arms the waiver of an episode is
    # decided when grading (alerts.fold._masking), so that a dose charted at the same instant as the
    # first fever, or minutes before it, arms it in whichever order the two events are applied.
    if cls.value in cfg.fever_masking_drugs:
        if newer(s.masking_dose_ts, ts):
            s.masking_dose_ts = ts
            s.findings["masking_drug"] = Observation(ts, True, ev.dose, ev.event_id, _dose_label(ev))
        crs = s.findings.get("masking_drug_crs")
        if names_crs(ev.reason) and (crs is None or ts >= crs.ts):
            s.findings["masking_drug_crs"] = Observation(ts, True, ev.dose, ev.event_id, _dose_label(ev))
    if not counts_for_crs(ev.reason, cfg.non_crs_causes):
        return  # given for something else: not treatment of CRS (no refractory clock)
    if cls in (DrugClass.IL6R_BLOCKADE, DrugClass.IL6_BLOCKADE):
        s.il6_blockade_ts = max(ts, s.il6_blockade_ts or NEG_INF)
        if in_episode:  # the refractory clock runs from the first dose of the episode
            s.episode_il6_ts = min(ts, s.episode_il6_ts if s.episode_il6_ts is not None else ts)
    if cls is DrugClass.CORTICOSTEROID:
        s.steroid_ts = max(ts, s.steroid_ts or NEG_INF)
        if in_episode:
            s.episode_steroid_ts = min(ts, s.episode_steroid_ts if s.episode_steroid_ts is not None else ts)


def _dose_label(ev: DrugDose) -> str:
    return f"{ev.drug} (for {ev.reason})" if ev.reason else ev.drug


def on_lab(s: PatientState, ev: LabResult) -> bool:
    series = s.labs.setdefault(ev.analyte.value, [])
    for p in series:
        if p.event_id == ev.event_id:
            return False
        if (p.ts == ev.ts and math.isclose(p.value, ev.value, rel_tol=1e-9) and p.comparator == ev.comparator
                and p.unit == ev.unit):
            return False  # the same result re-sent under another id (same collection time and value): one fact
    point = LabPoint(ev.ts, ev.value, ev.comparator, ev.unit, ev.event_id)
    kept = labs_kept(ev.analyte.value)
    i = len(series)
    while i > 0 and series[i - 1].ts > ev.ts:
        i -= 1
    if i == 0 and len(series) >= kept:
        return False  # older than every kept value: it would be dropped at once
    series.insert(i, point)
    if len(series) > kept:
        del series[0]
    return True


def on_context(s: PatientState, ev: PatientContext) -> None:
    if ev.weight is not None:
        s.weight_kg = ev.weight.value
    for b in ev.baselines:
        s.baselines[b.analyte.value] = LabPoint(ev.ts, b.value, b.comparator, b.unit, ev.event_id)
    if ev.immunosuppression is not None:
        s.immunosuppression = ev.immunosuppression


def on_neuro(s: PatientState, ev: NeuroAssessment, cfg: Thresholds) -> None:
    """Each domain the assessment gave becomes that domain's newest finding; the other domains keep
    theirs (a partial assessment, e.g. an EEG or a nursing ICE score, erases nothing)."""
    if newer(s.icans_ts, ev.ts):
        s.icans_ts = ev.ts
    for domain, finding in findings_of(ev):
        add_finding(s.icans_domains.setdefault(domain, []), domain, finding, cfg)


def on_attribution(s: PatientState, ev: Attribution) -> None:
    ts = ev.ts
    targets: set[str] = set()
    for target in ev.targets:
        if target is AttributionTarget.ALL:
            targets.update(_ALL_TARGETS)
        else:
            targets.add(target.value)
    crs = attributes_to_crs(ev.reason)
    reason = None if crs else ev.reason
    s.support_version += 1
    for t in ("fever", "hypotension", "icans", "masking"):
        if t not in targets:
            continue
        s.discount_before[t] = max(ts, s.discount_before.get(t, NEG_INF))
        if crs:
            s.forward_reason.pop(t, None)
            s.forward_since.pop(t, None)
        elif ev.forward and ts >= s.forward_since.get(t, NEG_INF):
            s.forward_reason[t] = ev.reason
            s.forward_since[t] = ts
    if "oxygen" in targets and s.oxygen is not None and s.oxygen.changed <= ts:
        s.oxygen.reason, s.oxygen.attributed = reason, not crs
        s.oxygen.changed = ts
        s.oxygen_changed = max(ts, s.oxygen_changed or NEG_INF)  # an older row cannot undo the judgement
    if "vasopressors" in targets:
        for agent, sup in [*s.infusions.items(), *s.infusions_paused.items()]:
            if (ev.agent is None or ev.agent.value == agent) and sup.changed <= ts:
                sup.reason, sup.attributed = reason, not crs
                sup.changed = ts
                s.infusion_changed[agent] = max(ts, s.infusion_changed.get(agent, NEG_INF))
    s.findings[f"attribution:{','.join(sorted(targets))}"] = Observation(ts, True, None, ev.event_id, ev.reason)
