"""ASTCT 2019 CRS grade (Lee et al. 2019), exactly as the consensus table (docs/clinical-rules.md).

- Fever >= 38 degC is required for every grade, except that after tocilizumab or a
  corticosteroid given for CRS, grading is driven by hypotension and hypoxia only (which
  dose waives it, and whether firmly or flagged uncertain, is alerts.fold._masking).
- Hypotension axis: hypotension without vasopressors = 2; one vasopressor with or
  without vasopressin = 3; two or more non-vasopressin vasopressors = 4. Hypotension while
  only vasopressors given for another cause run is that cause's, not counted (and said so).
- Hypoxia axis: low-flow nasal cannula (<= 6 L/min) or blow-by = 2; high-flow nasal
  cannula (> 6 L/min), facemask, non-rebreather or Venturi = 3; positive pressure
  (CPAP, BiPAP, mechanical ventilation) = 4.
- Grade = the more severe axis; grade 1 = fever with neither.
- Inotropes (dobutamine, milrinone) are not vasopressors ([U]: not
  addressed by ASTCT; excluded but recorded, see docs/clinical-rules.md).
- Support whose reason is explicitly not CRS does not count (attribution clause; the
  contract's reasonCode rule, models.vocabulary.counts_for_crs); any other reason counts.
- Nasal cannula with unknown flow, or oxygen with no documented device, is graded as
  at least 2 and flagged uncertain (ASTCT: nasal cannula without a flow cannot be graded).
"""

from __future__ import annotations

from dataclasses import dataclass

from models.vocabulary import (
    NON_CRS_CAUSES,
    VASOACTIVE_ROLE,
    OxygenDevice,
    VasoactiveAgent,
    VasoactiveRole,
    counts_for_crs,
)


@dataclass(frozen=True, slots=True)
class VasoItem:
    agent: VasoactiveAgent
    reason: str | None = None
    text: str = ""
    attributed: bool = False  # a clinician attributed it to `reason`, away from CRS


@dataclass(frozen=True, slots=True)
class OxygenItem:
    device: OxygenDevice
    flow_l_min: float | None = None
    reason: str | None = None
    text: str = ""
    attributed: bool = False
    quiet: bool = False  # excluded by a judgement from before this episode: not repeated in its evidence


@dataclass(frozen=True, slots=True)
class CrsInputs:
    fever: str | None = None  # evidence text of a current fever, None when afebrile
    masking: str | None = None  # evidence text of the dose that waives the fever requirement
    masking_uncertain: str | None = None  # why that waiver is uncertain (a dose from before this episode)
    no_masking: str | None = None  # why no dose waives it, when one is charted (never "no tocilizumab yet")
    hypotension: str | None = None  # evidence text of current hypotension
    vasoactives: tuple[VasoItem, ...] = ()
    oxygen: OxygenItem | None = None


@dataclass(frozen=True, slots=True)
class CrsAssessment:
    grade: int
    hypotension_axis: int
    hypoxia_axis: int
    evidence: tuple[str, ...]
    uncertain: tuple[str, ...]


_POSITIVE_PRESSURE = frozenset({OxygenDevice.CPAP, OxygenDevice.BIPAP, OxygenDevice.INVASIVE_VENTILATION})
_HIGH_FLOW_CLASS = frozenset(
    {
        OxygenDevice.HIGH_FLOW_NASAL_CANNULA,
        OxygenDevice.FACEMASK,
        OxygenDevice.NON_REBREATHER,
        OxygenDevice.VENTURI,
    }
)


def oxygen_axis(device: OxygenDevice, flow_l_min: float | None, low_flow_max: float = 6.0) -> tuple[int, str | None]:
    """ASTCT hypoxia-axis grade of one oxygen support, and why it is uncertain (or None)."""
    if device is OxygenDevice.ROOM_AIR:
        return 0, None
    if device in _POSITIVE_PRESSURE:
        return 4, None
    if device in _HIGH_FLOW_CLASS:
        return 3, None  # facemask is grade 3 at any flow
    if device is OxygenDevice.BLOW_BY:
        return 2, None
    if device is OxygenDevice.NASAL_CANNULA:
        if flow_l_min is None:
            return 2, "nasal cannula with unknown flow: graded 2, would be 3 above 6 L/min"
        return (2 if flow_l_min <= low_flow_max else 3), None
    return 2, "supplemental oxygen with no documented device: graded at least 2"


def support_counts(reason: str | None, attributed: bool, non_crs_causes: tuple[str, ...] = NON_CRS_CAUSES,
                   oxygen: bool = False) -> bool:
    """Running support counts toward CRS unless a clinician attributed it elsewhere or its reason is
    explicitly not CRS (models.vocabulary.counts_for_crs)."""
    return not attributed and counts_for_crs(reason, non_crs_causes, oxygen)


def grade_crs(
    x: CrsInputs, low_flow_max: float = 6.0, non_crs_causes: tuple[str, ...] = NON_CRS_CAUSES
) -> CrsAssessment:
    evidence: list[str] = []
    uncertain: list[str] = []

    counted_vaso: list[VasoItem] = []
    excluded_vaso: list[VasoItem] = []
    for item in x.vasoactives:
        role = VASOACTIVE_ROLE[item.agent]
        if role is VasoactiveRole.INOTROPE:
            evidence.append(f"{item.agent.value} running, an inotrope: not counted as a vasopressor ({item.text})")
        elif not support_counts(item.reason, item.attributed, non_crs_causes):
            evidence.append(f"{item.agent.value} running for {item.reason}: not counted toward CRS ({item.text})")
            excluded_vaso.append(item)
        else:
            if item.reason is not None:
                evidence.append(f"{item.agent.value} running for {item.reason}: names no cause other than CRS, "
                                f"counted ({item.text})")
            counted_vaso.append(item)
    non_vasopressin = [v for v in counted_vaso if VASOACTIVE_ROLE[v.agent] is VasoactiveRole.VASOPRESSOR]

    if len(non_vasopressin) >= 2:
        hypotension_axis = 4
    elif counted_vaso:
        hypotension_axis = 3
    elif x.hypotension is not None and excluded_vaso:
        # The hypotension is what the running vasopressor treats, and the chart gives that vasopressor
        # another cause: the hypotension is that cause's (ASTCT: not attributable to any other cause).
        hypotension_axis = 0
        names = " + ".join(f"{v.agent.value} (for {v.reason})" for v in excluded_vaso)
        evidence.append(f"hypotension ({x.hypotension}) while {names} runs, not counted toward CRS: the "
                        "hypotension it treats is not counted either")
    elif x.hypotension is not None:
        hypotension_axis = 2
    else:
        hypotension_axis = 0

    hypoxia_axis = 0
    if x.oxygen is not None:
        if support_counts(x.oxygen.reason, x.oxygen.attributed, non_crs_causes, oxygen=True):
            hypoxia_axis, why = oxygen_axis(x.oxygen.device, x.oxygen.flow_l_min, low_flow_max)
            if x.oxygen.reason is not None and x.oxygen.device is not OxygenDevice.ROOM_AIR:
                evidence.append(f"{x.oxygen.device.value} for {x.oxygen.reason}: names no cause other than CRS, "
                                f"counted ({x.oxygen.text})")
            if why:
                uncertain.append(why)
        elif x.oxygen.device is not OxygenDevice.ROOM_AIR and not x.oxygen.quiet:
            evidence.append(
                f"{x.oxygen.device.value} for {x.oxygen.reason}: not counted toward CRS ({x.oxygen.text})"
            )

    fever_ok = x.fever is not None or x.masking is not None
    if x.fever is not None:
        evidence.append(f"fever: {x.fever}")
    elif x.masking is not None and (hypotension_axis or hypoxia_axis):
        evidence.append(f"fever not required after {x.masking}")
        if x.masking_uncertain:
            uncertain.append(x.masking_uncertain)

    if hypotension_axis == 4:
        names = " + ".join(v.agent.value for v in non_vasopressin)
        also = [v.agent.value for v in counted_vaso if v not in non_vasopressin]
        extra = f"; also {' + '.join(also)}, not counted toward 'multiple'" if also else ""
        evidence.append(f"hypotension axis 4: {len(non_vasopressin)} non-vasopressin vasopressors ({names}{extra})")
    elif hypotension_axis == 3:
        names = " + ".join(v.agent.value for v in counted_vaso)
        evidence.append(f"hypotension axis 3: one vasopressor with or without vasopressin ({names})")
    elif hypotension_axis == 2:
        evidence.append(f"hypotension axis 2: hypotension without vasopressors ({x.hypotension})")
    if hypotension_axis >= 3:
        evidence.extend(f"  {v.agent.value}: {v.text}" for v in counted_vaso)
    if hypoxia_axis and x.oxygen is not None:
        flow = f" at {x.oxygen.flow_l_min:g} L/min" if x.oxygen.flow_l_min is not None else ""
        evidence.append(f"hypoxia axis {hypoxia_axis}: {x.oxygen.device.value}{flow} ({x.oxygen.text})")

    axis = max(hypotension_axis, hypoxia_axis)
    if not fever_ok:
        if axis:
            why = x.no_masking or "no tocilizumab/steroid charted"
            evidence.append(f"no current fever and {why}: ASTCT requires fever, grade 0")
        else:
            evidence.append("no current fever, hypotension or hypoxia counted toward CRS: grade 0")
        return CrsAssessment(0, hypotension_axis, hypoxia_axis, tuple(evidence), ())
    grade = axis if axis else (1 if x.fever is not None else 0)
    if grade == 1:
        evidence.append("grade 1: fever without hypotension or hypoxia")
    elif grade == 0:
        evidence.append("no hypotension or hypoxia counted toward CRS and no current fever: grade 0")
    return CrsAssessment(grade, hypotension_axis, hypoxia_axis, tuple(evidence), tuple(uncertain))
