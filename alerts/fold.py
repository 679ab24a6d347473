"""The fold: apply one clinical event to a patient's state and return what it emits.

`apply(state, event, cfg)` is deterministic and does no I/O. For speed it updates the
state it is given in place (the caller owns it; `alerts.log` keeps the snapshots that
re-ordering needs). The cost of one event does not depend on the patient's history:
every collection in the state is bounded.
"""

from __future__ import annotations

from datetime import UTC, datetime

from alerts.config import Thresholds
from alerts.crs import CrsInputs, OxygenItem, VasoItem, grade_crs, oxygen_axis, support_counts
from alerts.evolve import (
    NEG_INF,
    on_attribution,
    on_context,
    on_dose,
    on_finding,
    on_infusion,
    on_lab,
    on_neuro,
    on_oxygen,
    on_vitals,
)
from alerts.hlh_scores import HlhInputs, hlh2004, hscore
from alerts.icans import DOMAIN_LABEL, IcansNow, domain_grade, hold_setting
from alerts.icans import current as icans_now
from alerts.iec_hs import LEVEL_NAMES, IecHsInputs, TimedValue, assess, ferritin_rise_over_window
from alerts.vasopressors import RunningAgent, nee
from models.events import (
    Attribution,
    ClinicalEvent,
    DrugDose,
    Finding,
    Infusion,
    LabResult,
    NeuroAssessment,
    OxygenSupport,
    PatientContext,
    VitalSigns,
)
from models.labvalue import LabValue
from models.records import Alert, CrsGradeChange, IcansGradeChange, IecHsChange, Record, Severity
from models.state import IcansFinding, Observation, PatientState, Support, Track
from models.vocabulary import (
    VASOACTIVE_ROLE,
    OxygenDevice,
    VasoactiveAgent,
    VasoactiveRole,
    attributes_to_crs,
    attributes_to_icans,
)

# Alert severities are routing choices of this service (Alertmanager), not clinical grades.
_CRS_SEVERITY: dict[int, Severity] = {1: "info", 2: "warning", 3: "high", 4: "critical"}
_IEC_SEVERITY: dict[int, Severity] = {1: "warning", 2: "high", 3: "critical"}
_ICANS_SEVERITY: dict[int, Severity] = {1: "warning", 2: "high", 3: "critical", 4: "critical"}
_O2_SEVERITY: dict[int, Severity] = {2: "warning", 3: "high", 4: "critical"}
# The alert kinds whose bookkeeping a lab event writes (with labs and the IEC-HS fields).
LAB_TRACKS = ("ferritin_high", "ferritin_rapid_rise", "hypofibrinogenemia", "crp_ferritin_divergence", "iec_hs")


def copy_lab_part(src: PatientState, dst: PatientState) -> None:
    """Give `dst` the lab part of `src`: everything a LabResult writes, and nothing else."""
    dst.labs = {k: list(v) for k, v in src.labs.items()}
    dst.iec_hs_level = src.iec_hs_level
    dst.iec_hs_criteria = src.iec_hs_criteria
    dst.iec_hs_onset_ts = src.iec_hs_onset_ts
    dst.iec_eval_ts = src.iec_eval_ts
    for kind in LAB_TRACKS:
        t = src.tracks.get(kind)
        if t is None:
            dst.tracks.pop(kind, None)
        else:
            dst.tracks[kind] = Track(t.active, t.activation, list(t.alerted))


IEC_RECHECK_SECONDS = 3600  # engineering choice (cost), not a clinical threshold
_IEC_FINDINGS = ("pancytopenia", "hypofibrinogenemia", "hemophagocytosis", "splenomegaly")


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


def _offset_s(state: PatientState) -> int:
    """UTC offset of the CAR-T dose's time in seconds: Day numbers and clock times are local to it."""
    return (state.day0_offset_min or 0) * 60


def day_of(state: PatientState, ts: float) -> int | None:
    """Days since the calendar day of the CAR-T infusion, both read in the infusion's local offset."""
    if state.day0_ts is None:
        return None
    off = _offset_s(state)
    return int((ts + off) // 86400 - (state.day0_ts + off) // 86400)


def day_start(state: PatientState, day: int) -> float | None:
    """POSIX time at which local Day `day` begins, or None before Day 0 is known."""
    if state.day0_ts is None:
        return None
    off = _offset_s(state)
    return ((state.day0_ts + off) // 86400 + day) * 86400 - off


def when(state: PatientState, ts: float) -> str:
    """'Day +13 08:00', or the ISO time before Day 0 is known.

    The clock time is local to the CAR-T dose's UTC offset, which is named when it is not +00:00
    ('Day +1 07:00 (UTC-05:00)').
    """
    d = day_of(state, ts)
    if d is None:
        return iso(ts)
    off = _offset_s(state)
    minutes = int((ts + off) % 86400) // 60
    text = f"Day {d:+d} {minutes // 60:02d}:{minutes % 60:02d}"
    if off:
        sign, a = ("+" if off > 0 else "-"), abs(off) // 60
        text += f" (UTC{sign}{a // 60:02d}:{a % 60:02d})"
    return text


class _Emitter:
    """Collects the records of one event and keeps the alert bookkeeping in `state.tracks`."""

    __slots__ = ("late", "now", "out", "state")

    def __init__(self, state: PatientState, now: float, late: bool) -> None:
        self.state = state
        self.now = now
        self.late = late
        self.out: list[Record] = []

    def track(self, kind: str) -> Track:
        t = self.state.tracks.get(kind)
        if t is None:
            t = self.state.tracks[kind] = Track()
        return t

    def alert(
        self,
        kind: str,
        level: str,
        severity: Severity,
        summary: str,
        evidence: tuple[str, ...] | list[str],
        activation: int | None = None,
    ) -> None:
        """Raise `kind` at `level` unless this activation already alerted that level."""
        t = self.track(kind)
        if not t.active:
            t.active = True
            t.activation = activation if activation is not None else t.activation + 1
            t.alerted = []
        if level in t.alerted:
            return
        t.alerted.append(level)
        self.out.append(self._alert(kind, t.activation, level, severity, summary, evidence, "firing"))

    def resolve(self, kind: str, summary: str, evidence: tuple[str, ...] | list[str]) -> None:
        t = self.state.tracks.get(kind)
        if t is None or not t.active:
            return
        t.active = False
        self.out.append(self._alert(kind, t.activation, "resolved", "info", summary, evidence, "resolved"))
        t.alerted = []

    def _alert(
        self,
        kind: str,
        activation: int,
        level: str,
        severity: Severity,
        summary: str,
        evidence: tuple[str, ...] | list[str],
        status: str,
    ) -> Alert:
        s = self.state
        return Alert(
            id=f"{s.patient_id}:{kind}:{activation}:{level}",
            kind=kind,
            severity=severity,
            level=level,
            status="resolved" if status == "resolved" else "firing",
            summary=summary,
            patient_id=s.patient_id,
            time=iso(self.now),
            day=day_of(s, self.now),
            evidence=tuple(evidence),
            late=self.late,
        )


# ---------------------------------------------------------------- current signs


def _counted(s: PatientState, target: str, obs_ts: float) -> bool:
    return obs_ts > s.discount_before.get(target, NEG_INF) and target not in s.forward_reason


def _fever_now(s: PatientState, now: float, cfg: Thresholds) -> Observation | None:
    f = s.fever
    if f is None or now - f.ts > cfg.fever_window_hours * 3600:
        return None
    if s.afebrile_ts is not None and s.afebrile_ts >= f.ts:
        return None
    return f if _counted(s, "fever", f.ts) else None


def _hypotension_now(s: PatientState, now: float, cfg: Thresholds) -> Observation | None:
    h = s.hypotension
    if h is None or not h.present or now - h.ts > cfg.hypotension_stale_hours * 3600:
        return _fluid_held(s, now, cfg)
    return h if _counted(s, "hypotension", h.ts) else None


def _fluid_held(s: PatientState, now: float, cfg: Thresholds) -> Observation | None:
    """The hypotensive reading that a fluid bolus treated, while the IN-HOUSE hold after the bolus lasts:
    hypotension needing fluids is ASTCT 'hypotension not requiring vasopressors' though the readings
    after the bolus are normal."""
    b, low = s.fluid_bolus, s.hypotension_last
    if b is None or low is None or abs(b.ts - low.ts) > cfg.fluid_bolus_link_hours * 3600:
        return None
    if now - b.ts >= cfg.fluid_bolus_hold_hours * 3600:
        return None
    return low if _counted(s, "hypotension", low.ts) else None


def _hypotension_text(s: PatientState, h: Observation, cfg: Thresholds) -> str:
    text = _obs_text(s, h)
    cur, b = s.hypotension, s.fluid_bolus
    if h is not cur and b is not None:
        if cur is not None and cur.ts > h.ts:
            text += f"; since then {_obs_text(s, cur)}"
        text += (f"; treated with a fluid bolus ({b.label} at {when(s, b.ts)} [{b.event_id}]): held as hypotension "
                 f"until {cfg.fluid_bolus_hold_hours:g} h after the bolus (IN-HOUSE fluid_bolus_hold_hours)")
    return text


def _masking(s: PatientState, now: float, cfg: Thresholds) -> tuple[Observation, bool] | None:
    """The dose that waives the fever requirement now, and whether the waiver is firm.

    ASTCT 2019 (Lee et al.): once a patient with CRS receives tocilizumab or steroids, fever is no
    longer required to grade subsequent severity. Firm for the episode the dose was given for: given
    in it, up to `masking_onset_window_hours` before its onset, or (reason names CRS) after the
    previous episode ended. Either way the decision reads only event times, never the order in which
    same-instant events were applied. Any other masking dose in the last `fever_masking_hours` still
    masks fever (the drug does, whatever the bookkeeping): the grade stands, flagged uncertain.
    A clinician's "no active CRS" judgement (attribution of all) ends the episode the earlier doses
    were given for: after it they waive fever only in that uncertain way.
    """
    window = cfg.fever_masking_hours * 3600
    discount = s.discount_before.get("masking", NEG_INF)

    def usable(o: Observation | None) -> bool:
        return o is not None and o.ts <= now and now - o.ts <= window

    m = s.findings.get("masking_drug")
    if m is None or not usable(m):
        return None
    onset = s.episode_onset if s.crs_grade > 0 and s.episode_onset is not None else now
    if m.ts > discount and m.ts >= onset - cfg.masking_onset_window_hours * 3600:
        return m, True
    c = s.findings.get("masking_drug_crs")
    if (c is not None and usable(c) and c.ts > discount
            and (s.episode_end_ts is None or c.ts >= s.episode_end_ts)):
        return c, True
    # ASTCT's waiver is for a patient who has had CRS: before any, fever is required. "Had" means
    # before this instant, so that an episode opened and closed by same-instant events does not count.
    opened_now = s.crs_grade > 0 and s.episode_onset == now
    if s.crs_episodes_seen <= (1 if opened_now else 0):
        return None
    return m, False


def _no_masking(s: PatientState, now: float, cfg: Thresholds) -> str | None:
    """Why the latest masking dose does not waive fever (None when none is charted)."""
    m = s.findings.get("masking_drug")
    if m is None:
        return None
    dose = f"{m.label} at {when(s, m.ts)} [{m.event_id}]"
    if now - m.ts <= cfg.fever_masking_hours * 3600:
        return f"{dose} given before any CRS episode (ASTCT waives fever for CRS that was treated)"
    return f"{dose} more than {cfg.fever_masking_hours:g} h ago (IN-HOUSE fever_masking_hours)"


def _infection(s: PatientState, now: float, cfg: Thresholds) -> Observation | None:
    """A documented infection that may explain new fever or hypotension (ASTCT: fever 'not attributable
    to any other cause'), unless a later attribution gives fever or hypotension to CRS."""
    inf = s.findings.get("infection")
    if inf is None or not inf.present or inf.ts > now or now - inf.ts > cfg.infection_window_hours * 3600:
        return None
    for key, o in s.findings.items():
        if key.startswith("attribution:") and o.ts >= inf.ts and attributes_to_crs(o.label) and any(
                t in key for t in ("fever", "hypotension")):
            return None
    return inf


def _obs_text(s: PatientState, o: Observation) -> str:
    value = ""
    if o.value is not None:
        unit = " degC" if o.label == "temperature" else " mmHg" if o.label == "SBP" or o.label.endswith("MAP") else ""
        value = f" {o.value:g}{unit}"
    return f"{o.label}{value} at {when(s, o.ts)} [{o.event_id}]"


def _support_text(s: PatientState, sup: Support) -> str:
    dose = f" {sup.rate:g} {sup.unit}" if sup.rate is not None else " (dose not charted)"
    if sup.name in OxygenDevice._value2member_map_:
        dose = f" {sup.flow_l_min:g} L/min" if sup.flow_l_min is not None else ""
    extra = ", at or near maximal dose" if sup.at_max_dose else ""
    return f"{sup.name}{dose} since {when(s, sup.since)}{extra} [{sup.event_id}]"


def crs_inputs(s: PatientState, now: float, cfg: Thresholds) -> CrsInputs:
    fever = _fever_now(s, now, cfg)
    hypo = _hypotension_now(s, now, cfg)
    masking = masking_uncertain = None
    mask = _masking(s, now, cfg)
    if mask is not None:
        m, firm = mask
        masking = f"{m.label} at {when(s, m.ts)} [{m.event_id}]"
        if not firm:
            masking_uncertain = (
                f"fever waived after {masking}, given before this episode: tocilizumab and steroids mask fever "
                f"for days (IN-HOUSE fever_masking_hours {cfg.fever_masking_hours:g} h), but ASTCT waives it for "
                "the CRS that was treated"
            )
    episode_start = s.episode_onset if s.crs_grade > 0 and s.episode_onset is not None else now
    vaso = tuple(
        VasoItem(VasoactiveAgent(a), sup.reason, _support_text(s, sup), sup.attributed)
        for a, sup in sorted(s.infusions.items())
    )
    oxy = None
    if s.oxygen is not None:
        o = s.oxygen
        oxy = OxygenItem(OxygenDevice(o.name), o.flow_l_min, o.reason, _support_text(s, o), o.attributed,
                         quiet=o.attributed and o.changed < episode_start)
    return CrsInputs(
        fever=_obs_text(s, fever) if fever else None,
        masking=masking,
        masking_uncertain=masking_uncertain,
        no_masking=_no_masking(s, now, cfg) if mask is None else None,
        hypotension=_hypotension_text(s, hypo, cfg) if hypo else None,
        vasoactives=vaso,
        oxygen=oxy,
    )


# ---------------------------------------------------------------- evaluations


def _crs_signature(s: PatientState, now: float, cfg: Thresholds) -> tuple[bool | int | str | None, ...]:
    mask = _masking(s, now, cfg)
    inf = _infection(s, now, cfg)
    return (
        _fever_now(s, now, cfg) is not None,
        None if mask is None else mask[0].event_id + ("" if mask[1] else "?"),
        _hypotension_now(s, now, cfg) is not None,
        s.support_version,
        None if inf is None else inf.event_id,
    )


def _evaluate_crs(s: PatientState, em: _Emitter, cfg: Thresholds) -> None:
    now = em.now
    sig = _crs_signature(s, now, cfg)
    if sig == s.crs_sig:
        _check_refractory(s, em, cfg)
        return
    s.crs_sig = sig
    a = grade_crs(crs_inputs(s, now, cfg), cfg.low_flow_max_l_min, cfg.non_crs_causes)
    prev = s.crs_grade
    if a.grade == prev:
        _check_refractory(s, em, cfg)
        return
    s.crs_grade = a.grade
    uncertain = a.uncertain
    # Fever that opens a CRS episode while IEC-HS is suspected may be IEC-HS itself (Hines et al. 2023 [U]).
    # That is said on the IEC-HS side (its next record names the episode): a CRS record must not depend on
    # lab state, or its evidence would depend on the arrival order of labs and vitals inside the lateness
    # window, which corrections (by record key) do not follow (alerts.log, LAB_TRACKS).
    onset = now if prev == 0 else s.episode_onset if s.episode_onset is not None else now
    inf = _infection(s, now, cfg) if a.grade > 0 else None
    # A documented infection before the episode began: its signs may be the infection's (ASTCT attribution
    # clause). Graded and recorded, flagged uncertain, not paged up to infection_unpaged_max_grade;
    # physiology alerts (vasopressors, oxygen) still fire. Documented during an episode that was already
    # CRS: flagged, paged as before.
    unpaged = inf is not None and inf.ts <= onset and a.grade <= cfg.infection_unpaged_max_grade
    if inf is not None:
        uncertain = (*uncertain, f"{inf.label} at {when(s, inf.ts)} [{inf.event_id}]: fever or hypotension may be "
                     "attributable to it (ASTCT: not attributable to any other cause); needs a clinician's "
                     "attribution" + ("; not paged" if unpaged else ""),)
    evidence = a.evidence + tuple(f"uncertain: {u}" for u in uncertain)
    if prev == 0:
        s.episode += 1
        s.crs_episodes_seen += 1
        s.episode_onset = now
        s.episode_peak = a.grade
        # Doses of the last few hours before the onset were given for this episode, whichever of the
        # same-instant events was applied first (IN-HOUSE masking_onset_window_hours).
        since = now - cfg.masking_onset_window_hours * 3600
        s.episode_il6_ts = s.il6_blockade_ts if s.il6_blockade_ts is not None and s.il6_blockade_ts >= since else None
        s.episode_steroid_ts = s.steroid_ts if s.steroid_ts is not None and s.steroid_ts >= since else None
    elif a.grade == 0:
        if s.episode_onset == now:
            # Opened and closed by events of one instant (their order is arbitrary): not a CRS the
            # patient has had (the fever waiver, the IEC-HS timing label), nor the end of one (the
            # previous episode's end stays the last end).
            s.crs_episodes_seen -= 1
        else:
            s.episode_end_ts = now
    # The waiver depends on the grade: keep the signature as of the new grade.
    s.crs_sig = _crs_signature(s, now, cfg)
    em.out.append(
        CrsGradeChange(
            patient_id=s.patient_id,
            time=iso(now),
            day=day_of(s, now),
            grade=a.grade,
            previous=prev,
            episode=s.episode,
            evidence=evidence,
            uncertain=uncertain,
            late=em.late,
        )
    )
    if a.grade > s.episode_peak:
        s.episode_peak = a.grade
    if unpaged:
        pass
    elif prev == 0:
        em.alert("crs", str(a.grade), _CRS_SEVERITY[a.grade], f"CRS onset, grade {a.grade}", evidence, s.episode)
    elif a.grade > prev:
        em.alert("crs", str(a.grade), _CRS_SEVERITY[a.grade], f"CRS escalated to grade {a.grade}", evidence,
                 s.episode)
    elif a.grade > 0:
        em.alert("crs", f"down{a.grade}", "info", f"CRS de-escalated to grade {a.grade}", evidence, s.episode)
    if a.grade == 0:
        onset_text = when(s, s.episode_onset) if s.episode_onset is not None else "?"
        em.resolve("crs", f"CRS episode {s.episode} resolved (onset {onset_text}, peak grade {s.episode_peak})",
                   evidence)
        em.resolve("refractory_crs", "CRS no longer refractory: episode resolved", evidence)
    if a.grade >= cfg.refractory_min_grade:
        if prev < cfg.refractory_min_grade:
            s.grade_at_least_refractory_since = now
    else:
        s.grade_at_least_refractory_since = None
    _check_refractory(s, em, cfg)


def _check_refractory(s: PatientState, em: _Emitter, cfg: Thresholds) -> None:
    since = s.grade_at_least_refractory_since
    if since is None or s.episode_il6_ts is None or s.episode_steroid_ts is None:
        return
    t = s.tracks.get("refractory_crs")
    if t is not None and t.active and t.activation == s.episode:
        return
    start = max(since, s.episode_il6_ts, s.episode_steroid_ts)
    if em.now - start < cfg.refractory_hours * 3600:
        return
    crs_evidence = grade_crs(crs_inputs(s, em.now, cfg), cfg.low_flow_max_l_min, cfg.non_crs_causes).evidence
    evidence = (
        f"grade >= {cfg.refractory_min_grade} since {when(s, since)}",
        f"IL-6 blockade given at {when(s, s.episode_il6_ts)}",
        f"corticosteroid given at {when(s, s.episode_steroid_ts)}",
        f"grade {s.crs_grade} persisting {(em.now - start) / 3600:.0f} h after both (IN-HOUSE threshold "
        f"{cfg.refractory_hours:g} h)",
        *crs_evidence,
    )
    em.alert("refractory_crs", "1", "critical", f"CRS grade {s.crs_grade} refractory to IL-6 blockade and steroids",
             evidence, s.episode)


def _evaluate_vasopressors(s: PatientState, em: _Emitter, cfg: Thresholds, agent: str, started: bool) -> None:
    role = VASOACTIVE_ROLE[VasoactiveAgent(agent)]
    running = [VasoactiveAgent(a) for a in sorted(s.infusions)]
    pressors = [a for a in running if VASOACTIVE_ROLE[a] is not VasoactiveRole.INOTROPE]
    facts = [_support_text(s, s.infusions[a.value]) for a in running]
    if role is VasoactiveRole.INOTROPE:
        if started:
            em.alert("inotrope", agent, "warning", f"{agent} started (inotrope, not counted as a vasopressor)",
                     facts, s.inotrope_course)
        elif not any(VASOACTIVE_ROLE[a] is VasoactiveRole.INOTROPE for a in running):
            em.resolve("inotrope", "inotropes stopped", facts)
        return
    if not pressors:
        held = s.infusions_paused.get(agent)
        what = f"{agent} stopped" if held is None else (
            f"{agent} paused at {when(s, held.since)} (rate 0 or on hold): not running [{held.event_id}]")
        em.resolve("vasopressor_escalation", "all vasopressors stopped", [what])
        return
    result = nee([RunningAgent(a, s.infusions[a.value].rate, s.infusions[a.value].unit) for a in pressors],
                 s.weight_kg)
    if result.nee_ug_kg_min is not None:
        facts.append(f"norepinephrine equivalent {result.nee_ug_kg_min:.3f} ug/kg/min (Goradia 2021): "
                     + " + ".join(result.terms))
    else:
        facts.append(f"norepinephrine equivalent cannot be computed: {result.why_not}")
    if started:
        sup = s.infusions[agent]
        counted = _reason_note(sup, cfg)
        em.alert("vasopressor_escalation", f"agent:{agent}", "high",
                 f"{agent} added; {len(pressors)} vasopressor(s) running{counted}", facts, s.vaso_course)
        non_vasopressin = [
            a for a in pressors
            if VASOACTIVE_ROLE[a] is VasoactiveRole.VASOPRESSOR and _support_counts(s.infusions[a.value], cfg)
        ]
        if len(non_vasopressin) >= 2:
            em.alert("vasopressor_escalation", "multiple", "critical",
                     f"{len(non_vasopressin)} non-vasopressin vasopressors running (ASTCT grade 4 hypotension axis)",
                     facts, s.vaso_course)
    if result.nee_ug_kg_min is None:
        return
    value = result.nee_ug_kg_min
    if s.nee_min is None or value < s.nee_min:
        s.nee_min = value
    rise = value - s.nee_min
    if rise >= cfg.nee_rise_ug_kg_min:
        bucket = int(value // cfg.nee_rise_ug_kg_min)
        em.alert("vasopressor_escalation", f"nee:{bucket}", "high",
                 f"norepinephrine-equivalent dose {value:.3f} ug/kg/min, up {rise:.3f} from {s.nee_min:.3f}",
                 facts, s.vaso_course)


def _support_counts(sup: Support, cfg: Thresholds, oxygen: bool = False) -> bool:
    return support_counts(sup.reason, sup.attributed, cfg.non_crs_causes, oxygen)


def _reason_note(sup: Support, cfg: Thresholds, oxygen: bool = False) -> str:
    if sup.reason is None:
        return ""
    if _support_counts(sup, cfg, oxygen):
        return f" (reason {sup.reason}: names no cause other than CRS, counted)"
    return f" (reason {sup.reason}: not counted toward CRS)"


def _evaluate_oxygen(s: PatientState, em: _Emitter, cfg: Thresholds) -> None:
    if s.oxygen is None:
        em.resolve("oxygen_escalation", "off supplemental oxygen", ["room air"])
        return
    grade, why = oxygen_axis(OxygenDevice(s.oxygen.name), s.oxygen.flow_l_min, cfg.low_flow_max_l_min)
    if grade < 2:
        return
    t = s.tracks.get("oxygen_escalation")
    if t is not None and t.active and t.activation == s.oxygen_course and any(
        lvl.isdigit() and int(lvl) >= grade for lvl in t.alerted
    ):
        return
    reason = _reason_note(s.oxygen, cfg, oxygen=True)
    facts = [_support_text(s, s.oxygen)] + ([f"uncertain: {why}"] if why else [])
    # Support the chart gives another cause (home CPAP for sleep apnoea, post-operative ventilation) is
    # recorded, not paged: this is a CRS monitor.
    severity = _O2_SEVERITY[grade] if _support_counts(s.oxygen, cfg, oxygen=True) else "info"
    em.alert("oxygen_escalation", str(grade), severity,
             f"oxygen support at ASTCT hypoxia level {grade}: {s.oxygen.name}{reason}", facts, s.oxygen_course)


def _timed(s: PatientState, analyte: str, now: float, cfg: Thresholds, index: int = -1) -> TimedValue | None:
    series = s.labs.get(analyte)
    if not series or len(series) < -index:
        return None
    p = series[index]
    if now - p.ts > cfg.lab_valid_hours * 3600:
        return None

    def describe() -> str:
        return f"{analyte} {p.comparator or ''}{p.value:g} {p.unit} collected {when(s, p.ts)} [{p.event_id}]"

    return TimedValue(LabValue(p.value, p.comparator), p.ts, describe)


def _ferritin_window(s: PatientState, now: float, cfg: Thresholds) -> tuple[TimedValue | None, tuple[TimedValue, ...]]:
    """The newest valid ferritin and the earlier kept values (oldest first)."""
    series = s.labs.get("ferritin") or []
    cur = _timed(s, "ferritin", now, cfg)
    if cur is None:
        return None, ()
    earlier = tuple(tv for i in range(-len(series), -1) if (tv := _timed(s, "ferritin", now, cfg, i)) is not None)
    return cur, earlier


def _ferritin_rise_now(s: PatientState, now: float, cfg: Thresholds) -> str | None:
    """The rapid-rise rule as both the ferritin alert and the IEC-HS ferritin criterion read it."""
    cur, earlier = _ferritin_window(s, now, cfg)
    return ferritin_rise_over_window(cur, earlier, cfg)


def _documented(s: PatientState, now: float, cfg: Thresholds) -> tuple[tuple[str, str], ...]:
    out = []
    for kind in _IEC_FINDINGS:
        o = s.findings.get(kind)
        if o is not None and o.present and now - o.ts <= cfg.lab_valid_hours * 3600:
            out.append((kind, f"{o.label} at {when(s, o.ts)} [{o.event_id}]"))
    return tuple(out)


def _hlh_inputs(s: PatientState, now: float, cfg: Thresholds, documented: dict[str, str]) -> HlhInputs:
    def lv(analyte: str) -> LabValue | None:
        tv = _timed(s, analyte, now, cfg)
        return tv.value if tv is not None else None

    fever = _fever_now(s, now, cfg)
    window = cfg.fever_window_hours * 3600
    max_t = s.max_fever_c[1] if s.max_fever_c and now - s.max_fever_c[0] <= window else None
    documented_fever = fever is not None and fever.value is None
    if max_t is None and not documented_fever and s.max_temp_c and now - s.max_temp_c[0] <= window:
        max_t = s.max_temp_c[1]  # measured and afebrile: a known item (0 HScore points), not a missing one
    spleen = s.findings.get("splenomegaly")
    liver = s.findings.get("hepatomegaly")
    sil2r = s.labs.get("sil2r")
    return HlhInputs(
        max_temperature_c=max_t,
        fever_documented_without_value=fever is not None and fever.value is None and max_t is None,
        immunosuppression=s.immunosuppression,
        spleen_enlarged=spleen.present if spleen else None,
        liver_enlarged=liver.present if liver else None,
        hemoglobin_g_dl=lv("hemoglobin"),
        wbc_10e9_l=lv("wbc"),
        platelets_10e9_l=lv("platelets"),
        anc_10e9_l=lv("anc"),
        documented_cytopenia_lineages=3 if "pancytopenia" in documented else None,
        ferritin_ng_ml=lv("ferritin"),
        triglycerides_mg_dl=lv("triglycerides"),
        fibrinogen_mg_dl=lv("fibrinogen"),
        ast_u_l=lv("ast"),
        hemophagocytosis=True if "hemophagocytosis" in documented else None,
        sil2r=lv("sil2r"),
        sil2r_unit=sil2r[-1].unit if sil2r else None,
    )


def _crs_grade_at(s: PatientState, t: float, cfg: Thresholds) -> int:
    return grade_crs(crs_inputs(s, t, cfg), cfg.low_flow_max_l_min, cfg.non_crs_causes).grade


def _crs_lapse(s: PatientState, now: float, cfg: Thresholds) -> float | None:
    """When the signs of the recorded CRS grade lapsed without an event to re-grade it (labs do not), or
    None while they hold: the first time one of them runs out (a fever window, a blood pressure gone stale,
    a fluid-bolus hold, a masking window) after which the registers as they stand grade 0. A fixed time,
    so that labs collected after it count as collected after CRS (whatever the time of the re-check)."""
    if s.crs_grade == 0 or _crs_grade_at(s, now, cfg) > 0:
        return None
    ends = [o.ts + hours * 3600 for o, hours in ((s.fever, cfg.fever_window_hours),
                                                 (s.hypotension, cfg.hypotension_stale_hours),
                                                 (s.hypotension_last, cfg.hypotension_stale_hours),
                                                 (s.fluid_bolus, cfg.fluid_bolus_hold_hours),
                                                 (s.findings.get("masking_drug"), cfg.fever_masking_hours))
            if o is not None]
    onset = s.episode_onset if s.episode_onset is not None else NEG_INF
    for t in sorted(e for e in ends if onset < e < now):
        if _crs_grade_at(s, t + 1, cfg) == 0:
            return t
    return now


def _evaluate_iec_hs(s: PatientState, em: _Emitter, cfg: Thresholds) -> None:
    now = em.now
    s.iec_eval_ts = now
    documented = _documented(s, now, cfg)
    base = s.baselines.get("ferritin")
    ferritin, earlier = _ferritin_window(s, now, cfg)
    # Timing: a CRS episode that opened after the suspicion began (e.g. on IEC-HS's own fever) does not
    # make it "during active CRS".
    onset = s.iec_hs_onset_ts if s.iec_hs_onset_ts is not None else now  # a suspicion raised now begins now
    after = s.crs_grade > 0 and onset is not None and s.episode_onset is not None and (
        s.episode_onset > onset
        # or at the suspicion's very instant, once an earlier episode had resolved (IEC-HS's own fever)
        or (s.episode_onset == onset and s.episode_end_ts is not None and s.episode_end_ts <= onset))
    # Labs do not re-grade CRS: with only labs charted since, the recorded grade may rest on signs that
    # have lapsed (a fever older than fever_window_hours). Read, not written: CRS is not active then.
    lapse = _crs_lapse(s, now, cfg)
    lapsed = lapse is not None
    after_note = None
    if after and onset is not None and s.episode_onset is not None:
        rel = "after" if s.episode_onset > onset else "at the time"
        after_note = (f"CRS episode {s.episode} opened {when(s, s.episode_onset)}, {rel} this suspicion began "
                      f"{when(s, onset)}: its signs may be IEC-HS itself; timing kept from the suspicion's onset")
    nadir_end = day_start(s, cfg.cytopenia_nadir_days + 1)
    x = IecHsInputs(
        ferritin=ferritin,
        ferritin_previous=earlier[-1] if earlier else None,
        ferritin_earlier=earlier,
        ferritin_baseline=LabValue(base.value, base.comparator) if base else None,
        fibrinogen=_timed(s, "fibrinogen", now, cfg),
        platelets=_timed(s, "platelets", now, cfg),
        anc=_timed(s, "anc", now, cfg),
        hemoglobin=_timed(s, "hemoglobin", now, cfg),
        alt=_timed(s, "alt", now, cfg),
        ast=_timed(s, "ast", now, cfg),
        ldh=_timed(s, "ldh", now, cfg),
        triglycerides=_timed(s, "triglycerides", now, cfg),
        count_baselines=tuple(
            (a, LabValue(s.baselines[a].value, s.baselines[a].comparator))
            for a in ("hemoglobin", "platelets", "anc")
            if a in s.baselines
        ),
        documented=documented,
        crs_active=s.crs_grade > 0 and not after and not lapsed,
        crs_seen=s.crs_episodes_seen > (1 if after and not lapsed else 0),
        nadir_end_ts=nadir_end,
        nadir_end_day=cfg.cytopenia_nadir_days if nadir_end is not None else None,
        crs_after_onset=after_note,
        others_since=s.episode_end_ts if s.crs_grade == 0 else lapse,
    )
    a = assess(x, cfg)
    prev = s.iec_hs_level
    if "ferritin_rapid_rise" in s.tracks and ferritin_rise_over_window(ferritin, earlier, cfg) is None:
        # The ferritin alert and the IEC-HS ferritin criterion read one rule: they end together.
        em.resolve("ferritin_rapid_rise", "ferritin no longer rising rapidly (in-house rule)",
                   [ferritin.text if ferritin is not None else
                    f"no ferritin within the last {cfg.lab_valid_hours:g} h"])
    if a.level == prev and (a.level == 0 or a.criteria == s.iec_hs_criteria):
        s.iec_hs_criteria = a.criteria  # "IEC-HS level 0 -> 0": nothing suspected before or after, no record
        return
    s.iec_hs_level = a.level
    s.iec_hs_criteria = a.criteria
    if a.level == 0:
        s.iec_hs_onset_ts = None
    elif prev == 0:
        s.iec_hs_onset_ts = now
    evidence = a.evidence or (
        *([f"{ferritin.text}: not shown above {cfg.ferritin_fold_over_reference:g}x the reference nor rising rapidly "
           "(in-house rule)"] if ferritin is not None else []),
        f"no IEC-HS criterion met by the labs and findings of the last {cfg.lab_valid_hours:g} h")
    hlh_inputs = _hlh_inputs(s, now, cfg, dict(documented))
    hs, hlh = hscore(hlh_inputs), hlh2004(hlh_inputs)
    hs_text = (
        f"partial HScore [V2] at least {hs.min_possible} (known items {hs.known_points}), at most {hs.max_possible} "
        f"(cut-off {hs.cutoff}: {hs.verdict}); missing: {', '.join(hs.missing) or 'none'}"
    )
    hlh_text = (
        f"HLH-2004 [V2] {hlh.met}/8 met, {hlh.unknown} unknown ({hlh.verdict}); "
        f"missing: {', '.join(hlh.missing) or 'none'}"
    )
    em.out.append(
        IecHsChange(
            patient_id=s.patient_id,
            time=iso(now),
            day=day_of(s, now),
            level=a.level,
            previous=prev,
            label=a.label,
            hscore=hs_text,
            hlh2004=hlh_text,
            evidence=evidence,
            late=em.late,
        )
    )
    if a.level == 0:
        # Say what still holds: a lone major feature (e.g. hypofibrinogenemia) is below the watch level.
        summary = (f"IEC-HS below the in-house watch level ({', '.join(a.criteria)} still present)" if a.criteria
                   else "IEC-HS suspicion cleared")
        em.resolve("iec_hs", summary, evidence)
    elif a.level > prev:
        em.alert("iec_hs", str(a.level), _IEC_SEVERITY[a.level],
                 f"IEC-HS {LEVEL_NAMES[a.level]} (in-house scale; Hines 2023 criteria unverified [U]): {a.label}",
                 (*a.evidence, hs_text, hlh_text))


def _evaluate_labs(s: PatientState, em: _Emitter, cfg: Thresholds, analyte: str) -> None:
    now = em.now
    if analyte == "ferritin":
        cur = _timed(s, "ferritin", now, cfg)
        if cur is not None and cur.value.above(cfg.ferritin_high_ng_ml) is True:
            em.alert("ferritin_high", "1", "high", f"ferritin above {cfg.ferritin_high_ng_ml:g} ng/mL",
                     [cur.text, f"CARTOX carHLH ferritin > {cfg.ferritin_high_ng_ml:g} ng/mL [V2]"])
        elif cur is not None and cur.value.below(cfg.ferritin_high_ng_ml, inclusive=True) is True:
            em.resolve("ferritin_high", f"ferritin back at or below {cfg.ferritin_high_ng_ml:g} ng/mL", [cur.text])
        rise = _ferritin_rise_now(s, now, cfg)
        if rise is not None:
            em.alert("ferritin_rapid_rise", "1", "high", "ferritin rising rapidly (in-house rule)", [rise])
        elif cur is not None:
            em.resolve("ferritin_rapid_rise", "ferritin no longer rising rapidly (in-house rule)",
                       [cur.text, f"in-house rule not met: >= {cfg.ferritin_rise_ratio:g}x the lowest value of the "
                        f"previous {cfg.ferritin_rise_window_hours:g} h, newest above "
                        f"{cfg.ferritin_rise_floor_fold_uln * cfg.ferritin_uln_ng_ml:g} ng/mL "
                        f"({cfg.ferritin_rise_floor_fold_uln:g}x ULN {cfg.ferritin_uln_ng_ml:g})"])
    if analyte == "fibrinogen":
        fib = _timed(s, "fibrinogen", now, cfg)
        if fib is not None and fib.value.below(cfg.fibrinogen_low_mg_dl) is True:
            em.alert("hypofibrinogenemia", "1", "high", f"fibrinogen below {cfg.fibrinogen_low_mg_dl:g} mg/dL",
                     [fib.text, "HLH-2004 fibrinogen <= 1.5 g/L [V2]; IEC-HS < 150 mg/dL [U]"])
        elif fib is not None and fib.value.above(cfg.fibrinogen_low_mg_dl, inclusive=True) is True:
            em.resolve("hypofibrinogenemia", "fibrinogen recovered", [fib.text])
    if analyte in ("ferritin", "crp"):
        _evaluate_divergence(s, em, cfg)


def _evaluate_divergence(s: PatientState, em: _Emitter, cfg: Thresholds) -> None:
    """CRP falling while ferritin rises after IL-6 blockade (McNerney 2022, case 004 days +8 to +9)."""
    if s.il6_blockade_ts is None:
        return
    now = em.now
    window = cfg.crp_ferritin_window_hours * 3600
    crp, crp0 = _timed(s, "crp", now, cfg), _timed(s, "crp", now, cfg, -2)
    fer, fer0 = _timed(s, "ferritin", now, cfg), _timed(s, "ferritin", now, cfg, -2)
    if crp is None or crp0 is None or fer is None or fer0 is None:
        return
    if crp.ts - crp0.ts > window or fer.ts - fer0.ts > window or abs(crp.ts - fer.ts) > window:
        return
    falling = crp.value.less_than(crp0.value) is True and crp.ts > s.il6_blockade_ts
    rising = fer.value.greater_than(fer0.value) is True
    if falling and rising:
        em.alert("crp_ferritin_divergence", "1", "high",
                 "CRP falling while ferritin rises after IL-6 blockade: do not read the CRP fall as improvement",
                 [f"CRP {crp0.text} -> {crp.text}", f"ferritin {fer0.text} -> {fer.text}",
                  f"IL-6 blockade at {when(s, s.il6_blockade_ts)}"])
    elif not rising:
        em.resolve("crp_ferritin_divergence", "ferritin no longer rising", [fer0.text, fer.text])


def _icans_evidence(s: PatientState, a: IcansNow, cfg: Thresholds) -> tuple[str, ...]:
    """Which domain set the grade, then each assessed domain with the time it was last assessed."""
    def at(f: IcansFinding) -> str:
        return f"at {when(s, f.ts)} [{f.event_id}]"

    lines: list[str] = []
    if a.grade:
        setters = [f"{DOMAIN_LABEL[d.domain]} ({when(s, d.finding.ts)})" for d in a.domains if d.grade == a.grade]
        lines.append(f"ICANS grade {a.grade} set by {' and '.join(setters)}: the most severe domain (ASTCT 2019)")
    for d in a.domains:
        setting = hold_setting(d.domain, d.finding)
        if d.held:
            _, latest = domain_grade(d.domain, d.latest)
            lines.append(f"{d.text} {at(d.finding)}, held over the later {latest} {at(d.latest)} "
                         f"(IN-HOUSE {setting} {getattr(cfg, setting):g} h)")
        elif d.expired:
            lines.append(f"{d.text} {at(d.finding)}: {getattr(cfg, setting):g} h or more ago, no longer counted "
                         f"(IN-HOUSE {setting}) -> grade 0")
        else:
            lines.append(f"{d.text} {at(d.finding)}")
    if a.missing:
        lines.append("not assessed: " + ", ".join(DOMAIN_LABEL[m] for m in a.missing))
    return tuple(lines)


def _icans_attribution(s: PatientState) -> str:
    """The clinician's latest attribution of the neurological findings to another cause."""
    last = max((o for k, o in s.findings.items() if k.startswith("attribution:") and "icans" in k.split(":", 1)[1]
                .split(",") and not attributes_to_icans(o.label)), key=lambda o: (o.ts, o.event_id), default=None)
    if last is None:
        return "neurological findings attributed to clinician judgement"
    return f"neurological findings up to {when(s, last.ts)} attributed to {last.label} [{last.event_id}]"


def _evaluate_icans(s: PatientState, em: _Emitter, cfg: Thresholds) -> None:
    grade = 0
    evidence: tuple[str, ...] = ()
    if s.icans_ts is not None:
        a = icans_now(s.icans_domains, em.now, cfg, lambda ts: _counted(s, "icans", ts))
        if a.grade is not None:
            grade = a.grade
            evidence = _icans_evidence(s, a, cfg)
        if a.attributed:
            evidence += (_icans_attribution(s),)
    prev = s.icans_grade
    if grade == prev:
        return
    s.icans_grade = grade
    em.out.append(
        IcansGradeChange(patient_id=s.patient_id, time=iso(em.now), day=day_of(s, em.now), grade=grade,
                         previous=prev, evidence=evidence, late=em.late)
    )
    if grade == 0:
        em.resolve("icans", "ICANS resolved or not attributed to ICANS", evidence)
    elif grade > prev:
        em.alert("icans", str(grade), _ICANS_SEVERITY[grade], f"ICANS grade {grade} (for review)", evidence)


def _support_reasons(s: PatientState) -> dict[str, tuple[str | None, bool]]:
    out = {a: (sup.reason, sup.attributed) for a, sup in s.infusions.items()}
    if s.oxygen is not None:
        out["oxygen:" + s.oxygen.name] = (s.oxygen.reason, s.oxygen.attributed)
    return out


def _show_reason_changes(s: PatientState, em: _Emitter, cfg: Thresholds,
                         before: dict[str, tuple[str | None, bool]]) -> None:
    """A new reason on support that keeps running is shown even when the CRS grade does not change
    (then no grade record would carry it): an info alert on the support's own alert kind."""
    if any(isinstance(r, CrsGradeChange) for r in em.out):
        return  # the grade record's evidence names the reason
    at = iso(em.now)
    for agent, sup in sorted(s.infusions.items()):
        old = before.get(agent)
        if old is None or old == (sup.reason, sup.attributed) or sup.reason is None:
            continue
        if VASOACTIVE_ROLE[VasoactiveAgent(agent)] is VasoactiveRole.INOTROPE:
            continue  # never counted as a vasopressor, whatever its reason
        note = _reason_note(sup, cfg).strip(" ()")
        em.alert("vasopressor_escalation", f"reason:{agent}@{at}", "info", f"{agent}: {note}; CRS grade unchanged",
                 [_support_text(s, sup)], s.vaso_course)
    o = s.oxygen
    if o is not None and o.reason is not None:
        old = before.get("oxygen:" + o.name)
        if old is not None and old != (o.reason, o.attributed):
            note = _reason_note(o, cfg, oxygen=True).strip(" ()")
            em.alert("oxygen_escalation", f"reason@{at}", "info", f"{o.name}: {note}; CRS grade unchanged",
                     [_support_text(s, o)], s.oxygen_course)


# ---------------------------------------------------------------- entry point


def apply(state: PatientState, event: ClinicalEvent, cfg: Thresholds, late: bool = False) -> list[Record]:
    """Apply one event to `state` (in place) and return the records it emits."""
    s = state
    ts = event.ts
    if s.last_ts is None or ts > s.last_ts:
        s.last_ts = ts
    now = s.last_ts
    em = _Emitter(s, now, late)

    if isinstance(event, VitalSigns):
        registers = (s.fever, s.hypotension, s.max_fever_c, s.hypotension_last)
        on_vitals(s, event, cfg)
        if late and registers == (s.fever, s.hypotension, s.max_fever_c, s.hypotension_last):
            return em.out  # an old reading that changes nothing evaluates nothing (e.g. a redelivery)
        _evaluate_crs(s, em, cfg)
    elif isinstance(event, LabResult):
        # Labs change no CRS input, so they do not re-grade CRS: the lab part of the state
        # (see LAB_TRACKS, copy_lab_part) is all a lab writes, which alerts.log relies on.
        if on_lab(s, event):
            _evaluate_labs(s, em, cfg, event.analyte.value)
            _evaluate_iec_hs(s, em, cfg)
    elif isinstance(event, Infusion):
        reasons = _support_reasons(s)
        changed = on_infusion(s, event)
        _evaluate_crs(s, em, cfg)
        if changed is not None:
            _evaluate_vasopressors(s, em, cfg, *changed)
        _show_reason_changes(s, em, cfg, reasons)
    elif isinstance(event, OxygenSupport):
        reasons = _support_reasons(s)
        on_oxygen(s, event, cfg.non_crs_causes)
        _evaluate_crs(s, em, cfg)
        _evaluate_oxygen(s, em, cfg)
        _show_reason_changes(s, em, cfg, reasons)
    elif isinstance(event, DrugDose):
        on_dose(s, event, cfg)
        _evaluate_crs(s, em, cfg)
    elif isinstance(event, Finding):
        on_finding(s, event, cfg)
        _evaluate_crs(s, em, cfg)
        if event.finding.value in _IEC_FINDINGS:
            _evaluate_iec_hs(s, em, cfg)
    elif isinstance(event, NeuroAssessment):
        on_neuro(s, event, cfg)
        _evaluate_icans(s, em, cfg)
        _evaluate_crs(s, em, cfg)
    elif isinstance(event, PatientContext):
        on_context(s, event)
        _evaluate_iec_hs(s, em, cfg)
        _evaluate_crs(s, em, cfg)
    elif isinstance(event, Attribution):
        reasons = _support_reasons(s)
        on_attribution(s, event)
        _evaluate_crs(s, em, cfg)
        _evaluate_icans(s, em, cfg)
        _show_reason_changes(s, em, cfg, reasons)
    # Labs expire: re-check an active suspicion at most every IEC_RECHECK_SECONDS, whatever the event.
    if s.iec_hs_level and (s.iec_eval_ts is None or now - s.iec_eval_ts >= IEC_RECHECK_SECONDS):
        _evaluate_iec_hs(s, em, cfg)
    return em.out
