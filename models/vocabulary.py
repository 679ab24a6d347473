"""Controlled vocabularies shared by events and clinical logic.

Drug roles follow the FHIR R4 input contract (MedicationAdministration table) and
ASTCT 2019 (Lee et al.) and Goradia 2021 (vasopressin counts as a vasopressor but never toward
"multiple"; dobutamine and milrinone are inotropes, recorded but not vasopressors).
"""

from __future__ import annotations

import functools
import re
from enum import StrEnum
from typing import Final


class VasoactiveAgent(StrEnum):
    NOREPINEPHRINE = "norepinephrine"
    EPINEPHRINE = "epinephrine"
    PHENYLEPHRINE = "phenylephrine"
    DOPAMINE = "dopamine"
    VASOPRESSIN = "vasopressin"
    ANGIOTENSIN_II = "angiotensin_ii"
    METARAMINOL = "metaraminol"
    DOBUTAMINE = "dobutamine"
    MILRINONE = "milrinone"


class VasoactiveRole(StrEnum):
    VASOPRESSOR = "vasopressor"
    VASOPRESSIN = "vasopressin"  # a vasopressor that never counts toward "multiple" (ASTCT)
    INOTROPE = "inotrope"  # recorded, never a vasopressor (not addressed by ASTCT 2019 [U]; docs/clinical-rules.md)


VASOACTIVE_ROLE: Final[dict[VasoactiveAgent, VasoactiveRole]] = {
    VasoactiveAgent.NOREPINEPHRINE: VasoactiveRole.VASOPRESSOR,
    VasoactiveAgent.EPINEPHRINE: VasoactiveRole.VASOPRESSOR,
    VasoactiveAgent.PHENYLEPHRINE: VasoactiveRole.VASOPRESSOR,
    VasoactiveAgent.DOPAMINE: VasoactiveRole.VASOPRESSOR,
    VasoactiveAgent.ANGIOTENSIN_II: VasoactiveRole.VASOPRESSOR,
    VasoactiveAgent.METARAMINOL: VasoactiveRole.VASOPRESSOR,
    VasoactiveAgent.VASOPRESSIN: VasoactiveRole.VASOPRESSIN,
    VasoactiveAgent.DOBUTAMINE: VasoactiveRole.INOTROPE,
    VasoactiveAgent.MILRINONE: VasoactiveRole.INOTROPE,
}


class DrugClass(StrEnum):
    CAR_T = "car_t"  # the CAR-T infusion itself; defines Day 0
    IL6R_BLOCKADE = "il6r_blockade"
    IL6_BLOCKADE = "il6_blockade"
    CORTICOSTEROID = "corticosteroid"
    IL1_BLOCKADE = "il1_blockade"
    JAK_INHIBITOR = "jak_inhibitor"
    IFNG_BLOCKADE = "ifng_blockade"
    CYTOTOXIC = "cytotoxic"
    ANTIPYRETIC = "antipyretic"
    DIMERIZER = "dimerizer"  # rimiducid (activation switch of some CAR-T products)
    FLUID_BOLUS = "fluid_bolus"  # an intravenous fluid bolus (crystalloid or albumin), e.g. for hypotension
    OTHER = "other"


# Generic names (lower case) to class. Names not listed are accepted as DrugClass.OTHER.
DRUG_CLASS: Final[dict[str, DrugClass]] = {
    "tocilizumab": DrugClass.IL6R_BLOCKADE,
    "siltuximab": DrugClass.IL6_BLOCKADE,
    "dexamethasone": DrugClass.CORTICOSTEROID,
    "methylprednisolone": DrugClass.CORTICOSTEROID,
    "hydrocortisone": DrugClass.CORTICOSTEROID,
    "prednisone": DrugClass.CORTICOSTEROID,
    "prednisolone": DrugClass.CORTICOSTEROID,
    "anakinra": DrugClass.IL1_BLOCKADE,
    "ruxolitinib": DrugClass.JAK_INHIBITOR,
    "emapalumab": DrugClass.IFNG_BLOCKADE,
    "etoposide": DrugClass.CYTOTOXIC,
    "acetaminophen": DrugClass.ANTIPYRETIC,
    "paracetamol": DrugClass.ANTIPYRETIC,
    "rimiducid": DrugClass.DIMERIZER,
    "tisagenlecleucel": DrugClass.CAR_T,
    "axicabtagene ciloleucel": DrugClass.CAR_T,
    "lisocabtagene maraleucel": DrugClass.CAR_T,
    "idecabtagene vicleucel": DrugClass.CAR_T,
    "ciltacabtagene autoleucel": DrugClass.CAR_T,
    "brexucabtagene autoleucel": DrugClass.CAR_T,
    "obecabtagene autoleucel": DrugClass.CAR_T,
    "car-t cell product": DrugClass.CAR_T,
    # Intravenous fluids given as a dose (a bolus). Only a bolus near a hypotensive reading counts
    # (alerts.config fluid_bolus_link_hours); hyperoncotic 20-25% albumin is not a volume bolus.
    **dict.fromkeys((
        "fluid bolus", "crystalloid", "crystalloid bolus", "saline bolus", "normal saline", "0.9% saline",
        "sodium chloride 0.9%", "0.9% sodium chloride", "lactated ringer's", "lactated ringers", "lactated ringer",
        "ringer's lactate", "hartmann's solution", "plasma-lyte", "plasmalyte", "albumin", "albumin 5%", "5% albumin",
        "albumin 4%", "4% albumin",
    ), DrugClass.FLUID_BOLUS),
}


def drug_class(name: str) -> DrugClass:
    return DRUG_CLASS.get(name.strip().lower(), DrugClass.OTHER)


class OxygenDevice(StrEnum):
    ROOM_AIR = "room_air"
    BLOW_BY = "blow_by"
    NASAL_CANNULA = "nasal_cannula"
    HIGH_FLOW_NASAL_CANNULA = "high_flow_nasal_cannula"
    FACEMASK = "facemask"
    VENTURI = "venturi"
    NON_REBREATHER = "non_rebreather"
    CPAP = "cpap"
    BIPAP = "bipap"
    INVASIVE_VENTILATION = "invasive_ventilation"
    # Supplemental oxygen documented without a device (e.g. "hypoxia" in a case report).
    UNSPECIFIED = "unspecified"


class LabAnalyte(StrEnum):
    FERRITIN = "ferritin"
    CRP = "crp"
    IFN_GAMMA = "ifn_gamma"
    IL6 = "il6"
    IL8 = "il8"
    IL10 = "il10"
    TNF_ALPHA = "tnf_alpha"
    SIL2R = "sil2r"
    CXCL9 = "cxcl9"
    CXCL10 = "cxcl10"
    FIBRINOGEN = "fibrinogen"
    ALT = "alt"
    AST = "ast"
    LDH = "ldh"
    TRIGLYCERIDES = "triglycerides"
    BILIRUBIN = "bilirubin"
    PLATELETS = "platelets"
    ANC = "anc"
    WBC = "wbc"
    HEMOGLOBIN = "hemoglobin"
    CREATININE = "creatinine"
    LACTATE = "lactate"
    D_DIMER = "d_dimer"
    BNP = "bnp"
    PHOSPHORUS = "phosphorus"
    PSA = "psa"


class FindingKind(StrEnum):
    """Clinician-documented findings that carry no number (case reports, nursing notes)."""

    FEVER = "fever"
    HYPOTENSION = "hypotension"
    PANCYTOPENIA = "pancytopenia"
    HYPOFIBRINOGENEMIA = "hypofibrinogenemia"
    HEMOPHAGOCYTOSIS = "hemophagocytosis"
    SPLENOMEGALY = "splenomegaly"
    HEPATOMEGALY = "hepatomegaly"
    COAGULOPATHY = "coagulopathy"
    RENAL_FAILURE = "renal_failure"
    ENCEPHALOPATHY = "encephalopathy"
    INFECTION = "infection"
    LACTIC_ACIDOSIS = "lactic_acidosis"


class AttributionTarget(StrEnum):
    FEVER = "fever"
    HYPOTENSION = "hypotension"
    OXYGEN = "oxygen"
    VASOPRESSORS = "vasopressors"
    ICANS = "icans"
    ALL = "all"


class Consciousness(StrEnum):
    # Awake and alert: a normal level of consciousness (AVPU "A"). Not a row of the ASTCT table,
    # whose grade 1 is "awakens spontaneously" (a patient who was asleep or drowsy), so it grades 0.
    ALERT = "alert"
    AWAKENS_SPONTANEOUSLY = "awakens_spontaneously"
    AWAKENS_TO_VOICE = "awakens_to_voice"
    AWAKENS_TO_TACTILE = "awakens_to_tactile"
    UNAROUSABLE = "unarousable"

    @classmethod
    def _missing_(cls, value: object) -> Consciousness | None:
        """Other spellings of a value (any case, spaces or hyphens for underscores) and the normal
        level written as 'normal' or 'awake and alert'."""
        if not isinstance(value, str):
            return None
        key = "_".join(value.strip().lower().replace("-", " ").split())
        if key in ("normal", "awake_and_alert", "awake_alert"):
            return cls.ALERT
        return cls._value2member_map_.get(key)  # type: ignore[return-value]


class Seizure(StrEnum):
    NONE = "none"
    # clinical seizure resolving rapidly, or non-convulsive EEG seizure resolving with intervention
    RAPIDLY_RESOLVING = "rapidly_resolving"
    PROLONGED_OR_REPETITIVE = "prolonged_or_repetitive"  # >5 min, or repetitive without return to baseline


class CerebralEdema(StrEnum):
    NONE = "none"
    FOCAL = "focal"
    DIFFUSE = "diffuse"


# Why support, a dose or a finding was given or documented: the FHIR R4 input contract
# (MedicationAdministration, reasonCode): "Support whose reason is explicitly not CRS (for example
# cardiogenic shock, sepsis, diuresis, sedation) does not count toward the CRS grade; support with no
# reason is counted." So a reason excludes only when it explicitly says CRS is not the cause, or
# affirms another cause and does not name CRS. Any other reason ("hypotension", "shock", "CRS grade
# 2", a bare code, "rule out sepsis") counts, and the grade's evidence names the reason either way,
# so an exclusion is never silent. A missed grade is the worse error, so doubt counts toward CRS.
#
# IN-HOUSE DEFAULT (configurable: alerts.config.Thresholds.non_crs_causes): the other causes, as
# words or phrases matched on word boundaries, case-insensitive: the contract's four examples, the
# infections the seed cases document, airway protection and ICANS (support given for neurotoxicity);
# the causes ASTCT 2019 (Lee et al.) attribution clause implies and REFERENCE A.1 rule 4 names
# (post-operative, sedation or paralysis); positive pressure that is the patient's own (obstructive
# sleep apnoea, home CPAP/BiPAP), procedures, and pump failure (low cardiac output, LV dysfunction,
# heart failure: case 004 Day +10, epinephrine kept for cardiac output and diuresis).
NON_CRS_CAUSES: Final[tuple[str, ...]] = (
    "cardiogenic", "sepsis", "urosepsis", "septic", "bacteremia", "bacteraemia", "diuresis", "sedation",
    "airway protection", "icans", "neurotoxicity",
    "infection", "pneumonia",
    "obstructive sleep apnea", "obstructive sleep apnoea", "sleep apnea", "sleep apnoea", "osa", "home cpap",
    "home bipap", "home ventilation", "home niv",
    "post-operative", "postoperative", "post-op", "postop", "perioperative", "surgery", "surgical",
    "paralysis", "paralysed", "paralyzed", "neuromuscular blockade",
    "procedure", "procedural", "anesthesia", "anaesthesia",
    "low cardiac output", "lv dysfunction", "left ventricular dysfunction",
    "left ventricular systolic dysfunction", "lv systolic dysfunction", "ventricular dysfunction",
    "cardiac dysfunction", "heart failure", "cardiac failure", "cardiomyopathy",
)
# A mention is negated by a cue just before it (up to two words between, no punctuation) or just
# after it, and doubtful with a cue of uncertainty (a NegEx-style scope, kept deliberately small).
_NEGATED_BEFORE = re.compile(r"\b(?:not|no|non|without|unrelated to|negative for)\b[\s/-]*(?:\w+[\s/-]+){0,2}$")
_NEGATED_AFTER = re.compile(r"^[\s-]*(?:\w+[\s-]+)?(?:ruled out|excluded|unlikely|negative|resolved)\b")
_DOUBT_BEFORE = re.compile(
    r"(?:\b(?:r/o|rule out|rule-out|ruling out|possible|possibly|suspected|suspect|query|vs|versus|ddx)\b|\?)"
    r"[\s/:.-]*(?:\w+[\s/-]+){0,2}$"
)
_DOUBT_AFTER = re.compile(r"^[\s-]*(?:\w+[\s-]+)?(?:work-?up\b|vs\b|versus\b|suspected\b|possible\b|\?)")
_CRS = re.compile(r"\b(?:crs|cytokine release)\b")
# Said of oxygen or ventilation: the support is not for hypoxia, so it is off the hypoxia axis.
_NOT_FOR_HYPOXIA = re.compile(
    r"\b(?:not|no|non)\b[\s-]*(?:for |due to |from )?(?:hypoxia|hypoxic|hypoxemia|hypoxaemia)\b"
)
_HYPHENS = str.maketrans({c: "-" for c in "\u2010\u2011\u2012\u2013\u2014\u2212"})


@functools.lru_cache(maxsize=64)
def _phrases(phrases: tuple[str, ...]) -> re.Pattern[str]:
    return re.compile(r"\b(?:" + "|".join(re.escape(p.lower()) for p in phrases) + r")\b")


def _mention(text: str, m: re.Match[str]) -> str:
    """'negated', 'doubtful' or 'affirmed': how the reason speaks of the mention m."""
    before, after = text[max(0, m.start() - 48):m.start()], text[m.end():m.end() + 48]
    if _NEGATED_BEFORE.search(before) or _NEGATED_AFTER.search(after):
        return "negated"
    if _DOUBT_BEFORE.search(before) or _DOUBT_AFTER.search(after):
        return "doubtful"
    return "affirmed"


@functools.lru_cache(maxsize=1024)
def names_crs(reason: str | None) -> bool:
    """Whether the reason names CRS and does not negate it ('for CRS', 'CRS grade 2', 'CRS?')."""
    if reason is None:
        return False
    text = " ".join(reason.lower().translate(_HYPHENS).split())
    return any(_mention(text, m) != "negated" for m in _CRS.finditer(text))


@functools.lru_cache(maxsize=4096)
def counts_for_crs(reason: str | None, non_crs_causes: tuple[str, ...] = NON_CRS_CAUSES,
                   oxygen: bool = False) -> bool:
    """Whether support (oxygen=True: oxygen or ventilation), a dose or a finding with this reason counts
    toward CRS: see NON_CRS_CAUSES."""
    if reason is None:
        return True
    text = " ".join(reason.lower().translate(_HYPHENS).split())
    if oxygen and _NOT_FOR_HYPOXIA.search(text):
        return False
    crs = [_mention(text, m) for m in _CRS.finditer(text)]
    if crs:
        return any(c != "negated" for c in crs)  # naming CRS (even in doubt) counts; only "not CRS" excludes
    causes = tuple(c for c in non_crs_causes if c.strip())
    return not causes or all(_mention(text, m) != "affirmed" for m in _phrases(causes).finditer(text))


# An attribution event (clinician judgement) moves findings or support away from CRS unless its
# reason is one of these names of CRS; any other reason ("sepsis", "CRS resolved", ...) attributes
# them elsewhere.
CRS_REASONS: Final[frozenset[str]] = frozenset(
    {"crs", "cytokine release syndrome", "cytokine release", "crs shock", "crs hypoxia", "crs-related", "crs related"}
)


def attributes_to_crs(reason: str | None) -> bool:
    return reason is None or " ".join(reason.strip().lower().split()) in CRS_REASONS
