"""ICANS grade for adults from the ICE score and the other domains (ASTCT 2019).

Source: Lee et al. 2019 [V2] (ASTCT 2019 adult ICANS table, reproduced in PMC8403007 Table 4
and PMC7990806 Table 2). Pure functions, no I/O.

Rules implemented (ASTCT 2019):
- The ICANS grade is set by the most severe domain.
- ICE 0 while awake with global aphasia counts as grade 3, not grade 4.
- A domain that is not given stays unknown: it is listed in ``IcansGrade.missing`` and never
  imputed. The grade is then the most severe *known* domain, i.e. a lower bound.

Not implemented here, left to the caller (ASTCT 2019): depressed consciousness must not be
attributable to another cause (for example sedating drugs); tremor and myoclonus do not affect the
grade; intracranial hemorrhage is excluded; children <=12 years are assessed with CAPD, not ICE.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from models.vocabulary import CerebralEdema, Consciousness, Seizure

# Domain names, as used in IcansGrade.missing (they match the IcansInput field names).
ICE_DOMAIN: Final = "ice_score"
CONSCIOUSNESS_DOMAIN: Final = "consciousness"
SEIZURE_DOMAIN: Final = "seizure"
MOTOR_DOMAIN: Final = "motor_weakness"
EDEMA_DOMAIN: Final = "cerebral_edema"

# ASTCT 2019 ICANS table, "Level of consciousness" row [V2]. The table has no "normal" level: grade 1 is
# "awakens spontaneously". Pass None when the level was not assessed or was not depressed.
_CONSCIOUSNESS_GRADE: Final[dict[Consciousness, int]] = {
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
