"""ICANS grade for adults from the ICE score and the other domains (ASTCT 2019).

Source: Lee et al. 2019 [V2] (ASTCT 2019 adult ICANS table, reproduced in PMC8403007 Table 4
and PMC7990806 Table 2). Pure functions, no I/O.

Rules implemented (ASTCT 2019):
- The ICANS grade is set by the most severe domain.
- ICE 0 while awake with global aphasia counts as grade 3, not grade 4.
- A domain that is not given stays unknown: it is listed in ``IcansGrade.missing`` and never
  imputed. The grade is then the most severe *known* domain, i.e. a lower bound.

Across assessments (``add_finding``, ``current``): each domain keeps its own latest finding, with
its time and event id; an assessment changes only the domains it assessed. A finding above grade 0
holds for an IN-HOUSE time per domain (alerts.config ``icans_*_hold_hours``) even when a later
assessment of the same domain is milder; a seizure is an event and stops counting after its hold.

Not implemented here, left to the caller (ASTCT 2019): depressed consciousness must not be
attributable to another cause (for example sedating drugs); tremor and myoclonus do not affect the
grade; intracranial hemorrhage is excluded; children <=12 years are assessed with CAPD, not ICE.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from alerts.config import Thresholds
from models.events import NeuroAssessment
from models.state import IcansFinding
from models.vocabulary import CerebralEdema, Consciousness, Seizure

# Domain names, as used in IcansGrade.missing (they match the IcansInput field names).
ICE_DOMAIN: Final = "ice_score"
CONSCIOUSNESS_DOMAIN: Final = "consciousness"
SEIZURE_DOMAIN: Final = "seizure"
MOTOR_DOMAIN: Final = "motor_weakness"
EDEMA_DOMAIN: Final = "cerebral_edema"

DOMAINS: Final = (ICE_DOMAIN, CONSCIOUSNESS_DOMAIN, SEIZURE_DOMAIN, MOTOR_DOMAIN, EDEMA_DOMAIN)
DOMAIN_LABEL: Final = {ICE_DOMAIN: "ICE score", CONSCIOUSNESS_DOMAIN: "level of consciousness",
                       SEIZURE_DOMAIN: "seizure", MOTOR_DOMAIN: "motor findings", EDEMA_DOMAIN: "cerebral edema"}

# ASTCT 2019 ICANS table, "Level of consciousness" row [V2]. The table has no "normal" level: grade 1 is
# "awakens spontaneously". An awake, alert patient (Consciousness.ALERT) is the normal level, grade 0.
_CONSCIOUSNESS_GRADE: Final[dict[Consciousness, int]] = {
    Consciousness.ALERT: 0,
    Consciousness.AWAKENS_SPONTANEOUSLY: 1,
    Consciousness.AWAKENS_TO_VOICE: 2,
    Consciousness.AWAKENS_TO_TACTILE: 3,
    # "Unarousable, or needs vigorous or repeated tactile stimuli; stupor or coma"
    Consciousness.UNAROUSABLE: 4,
}

# ASTCT 2019 ICANS table, "Seizure" row [V2]: no grade 1 or 2 entry.
_SEIZURE_GRADE: Final[dict[Seizure, int]] = {
    Seizure.NONE: 0,
    # "Any clinical seizure that resolves rapidly, or non-convulsive seizure on EEG that resolves with intervention"
    Seizure.RAPIDLY_RESOLVING: 3,
    # "Life-threatening prolonged seizure (>5 min), or repetitive seizures without return to baseline"
    Seizure.PROLONGED_OR_REPETITIVE: 4,
}

# ASTCT 2019 ICANS table, "Raised ICP / cerebral edema" row [V2].
_EDEMA_GRADE: Final[dict[CerebralEdema, int]] = {
    CerebralEdema.NONE: 0,
    CerebralEdema.FOCAL: 3,  # "Focal or local edema on imaging"
    # "Diffuse edema, decerebrate or decorticate posturing, cranial nerve VI palsy, papilledema, or Cushing's triad"
    CerebralEdema.DIFFUSE: 4,
}


@dataclass(frozen=True, slots=True)
class IcansInput:
    """What is known about one ICANS assessment. None means "not assessed / not reported".

    ``unable_to_perform_ice``: the patient could not do the ICE test (ICE counts as 0). With no
    other information this is the grade-4 row "0, unarousable and unable to perform ICE".
    ``global_aphasia``: the patient is awake but globally aphasic, so ICE counts as 0 and grades 3.
    """

    ice_score: int | None = None
    consciousness: Consciousness | None = None
    seizure: Seizure | None = None
    motor_weakness: bool | None = None  # deep focal motor weakness (hemiparesis, paraparesis)
    cerebral_edema: CerebralEdema | None = None
    unable_to_perform_ice: bool = False
    global_aphasia: bool = False

    def __post_init__(self) -> None:
        s = self.ice_score
        if s is None:
            return
        if isinstance(s, bool) or not 0 <= s <= 10:
            raise ValueError(f"ICE score must be an integer 0-10, got {s!r}")
        if s > 0 and self.unable_to_perform_ice:
            raise ValueError(f"ICE score {s}/10 contradicts unable_to_perform_ice")
        if s > 0 and self.global_aphasia:
            raise ValueError(f"ICE score {s}/10 contradicts global aphasia (ICE 0 while awake)")


@dataclass(frozen=True, slots=True)
class IcansGrade:
    """ICANS grade 0-4, or None when no domain is known.

    ``evidence``: one readable line per known domain, e.g. "ICE score 9/10 -> grade 1".
    ``missing``: the domains that were not given (see the *_DOMAIN names). When it is not empty the
    grade is the most severe known domain, so the true grade may be higher.
    """

    grade: int | None
    evidence: tuple[str, ...]
    missing: tuple[str, ...] = ()


def _ice_domain(x: IcansInput) -> tuple[int, str] | None:
    """Grade of the ICE-score domain (ASTCT 2019 ICANS table, "ICE score" row [V2]), or None when unknown."""
    s = x.ice_score
    if s is not None and s > 0:
        if s == 10:
            return 0, "ICE score 10/10 -> grade 0"
        if s >= 7:
            return 1, f"ICE score {s}/10 -> grade 1"  # 7-9
        if s >= 3:
            return 2, f"ICE score {s}/10 -> grade 2"  # 3-6
        return 3, f"ICE score {s}/10 -> grade 3"  # 1-2 (0-2 band)
    what = "ICE score 0/10" if s == 0 else "unable to perform ICE"
    if x.global_aphasia:
        # ASTCT 2019: "ICE 0 while awake with global aphasia counts as grade 3, not grade 4."
        # Global aphasia alone also means the language-based ICE tasks cannot be done (ICE 0).
        return 3, f"{what} while awake with global aphasia -> grade 3"
    if x.unable_to_perform_ice:
        if s == 0:
            what += ", unable to perform ICE"
        c = x.consciousness
        if c is Consciousness.UNAROUSABLE:
            # Grade-4 ICE row: "0, unarousable and unable to perform ICE".
            return 4, f"{what} (unarousable) -> grade 4"
        if c is None:
            # Not imputed: grade 4 needs "unarousable", which was not documented.
            return 3, f"{what}, consciousness not documented: at least grade 3 (grade 4 if unarousable)"
        # Arousable but unable: ICE counts as 0, which is in the 0-2 band.
        return 3, f"{what} while arousable ({c.value.replace('_', ' ')}), ICE counts as 0 -> grade 3"
    if s == 0:
        return 3, "ICE score 0/10 -> grade 3"  # 0-2 band
    return None


def grade_icans(x: IcansInput) -> IcansGrade:
    """Grade ICANS by the most severe known domain (ASTCT 2019 [V2])."""
    domains: list[tuple[int, str]] = []
    missing: list[str] = []

    ice = _ice_domain(x)
    if ice is None:
        missing.append(ICE_DOMAIN)
    else:
        domains.append(ice)

    if x.consciousness is None:
        missing.append(CONSCIOUSNESS_DOMAIN)
    else:
        g = _CONSCIOUSNESS_GRADE[x.consciousness]
        domains.append((g, f"consciousness: {x.consciousness.value.replace('_', ' ')} -> grade {g}"))

    if x.seizure is None:
        missing.append(SEIZURE_DOMAIN)
    else:
        g = _SEIZURE_GRADE[x.seizure]
        label = "no seizure" if x.seizure is Seizure.NONE else f"seizure: {x.seizure.value.replace('_', ' ')}"
        domains.append((g, f"{label} -> grade {g}"))

    if x.motor_weakness is None:
        missing.append(MOTOR_DOMAIN)
    elif x.motor_weakness:
        # ASTCT 2019 ICANS table, "Motor findings" row [V2]: only a grade-4 entry.
        domains.append((4, "deep focal motor weakness -> grade 4"))
    else:
        domains.append((0, "no deep focal motor weakness -> grade 0"))

    if x.cerebral_edema is None:
        missing.append(EDEMA_DOMAIN)
    else:
        g = _EDEMA_GRADE[x.cerebral_edema]
        label = (
            "no cerebral edema"
            if x.cerebral_edema is CerebralEdema.NONE
            else f"cerebral edema: {x.cerebral_edema.value}"
        )
        domains.append((g, f"{label} -> grade {g}"))

    grade = max((g for g, _ in domains), default=None)
    return IcansGrade(grade=grade, evidence=tuple(e for _, e in domains), missing=tuple(missing))


# ---------------------------------------------------------------- across assessments


def findings_of(ev: NeuroAssessment) -> list[tuple[str, IcansFinding]]:
    """The domains one assessment gave, each as a finding of its own (domains not given are absent)."""
    ts, eid = ev.ts, ev.event_id
    out: list[tuple[str, IcansFinding]] = []
    if ev.ice_score is not None or ev.unable_to_perform_ice or ev.global_aphasia:
        score = str(ev.ice_score) if ev.ice_score is not None else None
        out.append((ICE_DOMAIN, IcansFinding(ts, eid, score, ev.unable_to_perform_ice, ev.global_aphasia)))
    if ev.consciousness is not None:
        out.append((CONSCIOUSNESS_DOMAIN, IcansFinding(ts, eid, ev.consciousness.value)))
    if ev.seizure is not None:
        out.append((SEIZURE_DOMAIN, IcansFinding(ts, eid, ev.seizure.value)))
    if ev.motor_weakness is not None:
        out.append((MOTOR_DOMAIN, IcansFinding(ts, eid, str(ev.motor_weakness))))
    if ev.cerebral_edema is not None:
        out.append((EDEMA_DOMAIN, IcansFinding(ts, eid, ev.cerebral_edema.value)))
    return out


def _input_of(domain: str, f: IcansFinding, consciousness: Consciousness | None = None) -> IcansInput:
    if domain == ICE_DOMAIN:
        return IcansInput(ice_score=int(f.value) if f.value is not None else None, consciousness=consciousness,
                          unable_to_perform_ice=f.unable_to_perform_ice, global_aphasia=f.global_aphasia)
    v = f.value or ""  # always given outside the ICE domain
    if domain == CONSCIOUSNESS_DOMAIN:
        return IcansInput(consciousness=Consciousness(v))
    if domain == SEIZURE_DOMAIN:
        return IcansInput(seizure=Seizure(v))
    if domain == MOTOR_DOMAIN:
        return IcansInput(motor_weakness=v == "True")
    return IcansInput(cerebral_edema=CerebralEdema(v))


def domain_grade(domain: str, f: IcansFinding, consciousness: Consciousness | None = None) -> tuple[int, str]:
    """The grade of one domain's finding and its evidence text (e.g. "ICE score 8/10 -> grade 1").
    ``consciousness`` (the current level) decides "unable to perform ICE" (grade 4 if unarousable)."""
    x = _input_of(domain, f, consciousness)
    if domain == ICE_DOMAIN:
        ice = _ice_domain(x)
        assert ice is not None  # an ICE finding has a score, "unable" or "global aphasia"
        return ice
    g = grade_icans(x)
    return g.grade or 0, g.evidence[0]


def hold_hours(domain: str, f: IcansFinding, cfg: Thresholds) -> float:
    """How long a finding above grade 0 holds against a milder later assessment of its domain (IN-HOUSE)."""
    if domain == SEIZURE_DOMAIN:
        if f.value == Seizure.PROLONGED_OR_REPETITIVE.value:
            return cfg.icans_status_epilepticus_hold_hours
        return cfg.icans_seizure_hold_hours
    return {
        ICE_DOMAIN: cfg.icans_ice_hold_hours,
        CONSCIOUSNESS_DOMAIN: cfg.icans_consciousness_hold_hours,
        MOTOR_DOMAIN: cfg.icans_motor_hold_hours,
        EDEMA_DOMAIN: cfg.icans_edema_hold_hours,
    }[domain]


HOLD_SETTING: Final = {
    ICE_DOMAIN: "icans_ice_hold_hours",
    CONSCIOUSNESS_DOMAIN: "icans_consciousness_hold_hours",
    MOTOR_DOMAIN: "icans_motor_hold_hours",
    EDEMA_DOMAIN: "icans_edema_hold_hours",
}


def hold_setting(domain: str, f: IcansFinding) -> str:
    """The alerts.config name of the hold that applies to `f` (for evidence)."""
    if domain == SEIZURE_DOMAIN:
        if f.value == Seizure.PROLONGED_OR_REPETITIVE.value:
            return "icans_status_epilepticus_hold_hours"
        return "icans_seizure_hold_hours"
    return HOLD_SETTING[domain]


def add_finding(findings: list[IcansFinding], domain: str, f: IcansFinding, cfg: Thresholds) -> bool:
    """Put `f` into its domain's findings (oldest first, in (time, event_id) order). Returns False when
    it was there already (a redelivery).

    Kept: the latest finding, and each earlier finding above grade 0 that no later finding of at least
    its grade covers and whose hold has not run out by the latest one (so at most one per grade).
    """
    key = (f.ts, f.event_id)
    if any((g.ts, g.event_id) == key for g in findings):
        return False
    i = len(findings)
    while i > 0 and (findings[i - 1].ts, findings[i - 1].event_id) > key:
        i -= 1
    findings.insert(i, f)
    latest = findings[-1]
    kept = [latest]
    top = domain_grade(domain, latest)[0]
    for g in reversed(findings[:-1]):
        grade = domain_grade(domain, g)[0]
        if grade > top and latest.ts - g.ts < hold_hours(domain, g, cfg) * 3600:
            kept.append(g)
            top = grade
    findings[:] = reversed(kept)
    return True


@dataclass(frozen=True, slots=True)
class DomainNow:
    """One domain as it counts now. ``finding`` sets its grade: the latest assessment, or an earlier,
    more severe finding whose hold has not run out (``held``). ``expired``: a seizure past its hold."""

    domain: str
    grade: int
    text: str
    finding: IcansFinding
    latest: IcansFinding
    held: bool
    expired: bool


@dataclass(frozen=True, slots=True)
class IcansNow:
    grade: int | None  # None: no counted finding at all
    domains: tuple[DomainNow, ...]  # assessed domains, in DOMAINS order
    missing: tuple[str, ...]  # domains never assessed (a domain whose findings were attributed away is not)
    attributed: bool  # some finding was left out by a clinician's attribution to another cause


def current(domains: dict[str, list[IcansFinding]], now: float, cfg: Thresholds,
            counted: Callable[[float], bool]) -> IcansNow:
    """ICANS now from each domain's findings: the most severe domain sets the grade (ASTCT 2019).

    ``counted(ts)``: whether a finding of that time counts (False after a clinician attributed the
    neurological findings to another cause)."""
    chosen: dict[str, tuple[IcansFinding, IcansFinding, bool, bool]] = {}
    attributed = False
    for domain in DOMAINS:
        fs = [f for f in domains.get(domain, ()) if counted(f.ts)]
        attributed = attributed or len(fs) < len(domains.get(domain, ()))
        if not fs:
            continue
        latest = fs[-1]
        best, held, expired = latest, False, False
        top = domain_grade(domain, latest)[0]
        if domain == SEIZURE_DOMAIN and top > 0 and now - latest.ts >= hold_hours(domain, latest, cfg) * 3600:
            top, expired = 0, True
        for f in fs[:-1]:
            g = domain_grade(domain, f)[0]
            if g > top and now - f.ts < hold_hours(domain, f, cfg) * 3600:
                best, top, held, expired = f, g, True, False
        chosen[domain] = (best, latest, held, expired)
    level = None
    if CONSCIOUSNESS_DOMAIN in chosen:
        level = Consciousness(chosen[CONSCIOUSNESS_DOMAIN][0].value or "")
    out: list[DomainNow] = []
    for domain, (best, latest, held, expired) in chosen.items():
        g, text = domain_grade(domain, best, level)
        if expired:
            g = 0
        out.append(DomainNow(domain, g, text, best, latest, held, expired))
    grade = max((d.grade for d in out), default=None)
    missing = tuple(d for d in DOMAINS if not domains.get(d))
    return IcansNow(grade, tuple(out), missing, attributed)
