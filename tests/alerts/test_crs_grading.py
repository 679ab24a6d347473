"""ASTCT 2019 CRS grading, rule by rule (Lee et al. 2019): the pure grade function and the fold."""

from __future__ import annotations

import pytest

from alerts.config import Thresholds
from alerts.crs import CrsInputs, OxygenItem, VasoItem, grade_crs
from alerts.fold import apply
from models.events import ClinicalEvent
from models.state import PatientState
from models.vocabulary import OxygenDevice, VasoactiveAgent
from tests.factories import PID, bp, car_t, dose, infusion, oxygen, temp

NE, EPI, PE = VasoactiveAgent.NOREPINEPHRINE, VasoactiveAgent.EPINEPHRINE, VasoactiveAgent.PHENYLEPHRINE
VASO, DOBU, MIL = VasoactiveAgent.VASOPRESSIN, VasoactiveAgent.DOBUTAMINE, VasoactiveAgent.MILRINONE
ANG, DOPA = VasoactiveAgent.ANGIOTENSIN_II, VasoactiveAgent.DOPAMINE
FEVER = "T 38.5"


def vaso(*agents: VasoactiveAgent, reason: str | None = None) -> tuple[VasoItem, ...]:
    return tuple(VasoItem(a, reason) for a in agents)


def o2(device: OxygenDevice, flow: float | None = None, reason: str | None = None) -> OxygenItem:
    return OxygenItem(device, flow, reason)


D = OxygenDevice
TABLE: list[tuple[str, CrsInputs, int]] = [
    ("no findings", CrsInputs(), 0),
    ("fever only = 1", CrsInputs(fever=FEVER), 1),
    ("fever + hypotension without vasopressor = 2", CrsInputs(fever=FEVER, hypotension="SBP 80"), 2),
    ("fever + one vasopressor = 3", CrsInputs(fever=FEVER, vasoactives=vaso(NE)), 3),
    ("NE + vasopressin = 3", CrsInputs(fever=FEVER, vasoactives=vaso(NE, VASO)), 3),
    ("vasopressin alone = 3", CrsInputs(fever=FEVER, vasoactives=vaso(VASO)), 3),
    ("NE + phenylephrine = 4", CrsInputs(fever=FEVER, vasoactives=vaso(NE, PE)), 4),
    ("NE + epinephrine = 4", CrsInputs(fever=FEVER, vasoactives=vaso(NE, EPI)), 4),
    ("NE + angiotensin II = 4", CrsInputs(fever=FEVER, vasoactives=vaso(NE, ANG)), 4),
    ("dopamine + phenylephrine = 4", CrsInputs(fever=FEVER, vasoactives=vaso(DOPA, PE)), 4),
    ("NE + vasopressin + phenylephrine = 4", CrsInputs(fever=FEVER, vasoactives=vaso(NE, VASO, PE)), 4),
    ("milrinone is not a vasopressor", CrsInputs(fever=FEVER, vasoactives=vaso(MIL)), 1),
    ("dobutamine is not a vasopressor", CrsInputs(fever=FEVER, vasoactives=vaso(DOBU)), 1),
    ("NE + milrinone = 3, not 4", CrsInputs(fever=FEVER, vasoactives=vaso(NE, MIL)), 3),
    ("NE + dobutamine = 3, not 4", CrsInputs(fever=FEVER, vasoactives=vaso(NE, DOBU)), 3),
    (
        "epinephrine with a non-CRS reason excluded",
        CrsInputs(fever=FEVER, vasoactives=(VasoItem(NE), VasoItem(EPI, "cardiogenic"))),
        3,
    ),
    ("epinephrine for diuresis alone excluded", CrsInputs(fever=FEVER, vasoactives=vaso(EPI, reason="diuresis")), 1),
    ("reason 'crs' counts", CrsInputs(fever=FEVER, vasoactives=(VasoItem(NE), VasoItem(EPI, "CRS"))), 4),
    ("blow-by = 2", CrsInputs(fever=FEVER, oxygen=o2(D.BLOW_BY)), 2),
    ("nasal cannula 6 L/min = 2", CrsInputs(fever=FEVER, oxygen=o2(D.NASAL_CANNULA, 6)), 2),
    ("nasal cannula 7 L/min = 3", CrsInputs(fever=FEVER, oxygen=o2(D.NASAL_CANNULA, 7)), 3),
    ("nasal cannula 0.5 L/min = 2", CrsInputs(fever=FEVER, oxygen=o2(D.NASAL_CANNULA, 0.5)), 2),
    ("HFNC = 3", CrsInputs(fever=FEVER, oxygen=o2(D.HIGH_FLOW_NASAL_CANNULA, 40)), 3),
    ("facemask at 2 L/min = 3", CrsInputs(fever=FEVER, oxygen=o2(D.FACEMASK, 2)), 3),
    ("facemask without flow = 3", CrsInputs(fever=FEVER, oxygen=o2(D.FACEMASK)), 3),
    ("non-rebreather = 3", CrsInputs(fever=FEVER, oxygen=o2(D.NON_REBREATHER, 15)), 3),
    ("Venturi = 3", CrsInputs(fever=FEVER, oxygen=o2(D.VENTURI)), 3),
    ("CPAP = 4", CrsInputs(fever=FEVER, oxygen=o2(D.CPAP)), 4),
    ("BiPAP = 4", CrsInputs(fever=FEVER, oxygen=o2(D.BIPAP)), 4),
    ("invasive ventilation = 4", CrsInputs(fever=FEVER, oxygen=o2(D.INVASIVE_VENTILATION)), 4),
    ("room air = fever only", CrsInputs(fever=FEVER, oxygen=o2(D.ROOM_AIR)), 1),
    (
        "ventilation for sedation excluded",
        CrsInputs(fever=FEVER, oxygen=o2(D.INVASIVE_VENTILATION, reason="sedation")),
        1,
    ),
    ("more severe axis: one vasopressor + low-flow = 3", CrsInputs(fever=FEVER, vasoactives=vaso(NE),
                                                                   oxygen=o2(D.NASAL_CANNULA, 4)), 3),
    ("more severe axis: hypotension + CPAP = 4", CrsInputs(fever=FEVER, hypotension="SBP 80", oxygen=o2(D.CPAP)), 4),
    ("no fever, no masking: vasopressor = 0", CrsInputs(vasoactives=vaso(NE, EPI)), 0),
    ("no fever, no masking: facemask = 0", CrsInputs(oxygen=o2(D.FACEMASK)), 0),
    ("hypotension without fever after tocilizumab = 2", CrsInputs(masking="tocilizumab", hypotension="SBP 80"), 2),
    ("hypoxia without fever after steroids = 3", CrsInputs(masking="dexamethasone", oxygen=o2(D.FACEMASK)), 3),
    ("masked and nothing else = 0", CrsInputs(masking="tocilizumab"), 0),
]


@pytest.mark.parametrize(("name", "inputs", "grade"), TABLE, ids=[t[0] for t in TABLE])
def test_astct_rule(name: str, inputs: CrsInputs, grade: int) -> None:
    assert grade_crs(inputs).grade == grade


def test_unknown_nasal_cannula_flow_is_at_least_2_and_flagged() -> None:
    a = grade_crs(CrsInputs(fever=FEVER, oxygen=o2(D.NASAL_CANNULA)))
    assert a.grade == 2
    assert a.uncertain and "unknown flow" in a.uncertain[0]


def test_unspecified_device_is_at_least_2_and_flagged() -> None:
    a = grade_crs(CrsInputs(fever=FEVER, oxygen=o2(D.UNSPECIFIED)))
    assert a.grade == 2 and a.uncertain


def test_evidence_names_the_facts() -> None:
    a = grade_crs(CrsInputs(fever=FEVER, vasoactives=(VasoItem(NE, None, "NE 10 ug/min"),
                                                      VasoItem(EPI, "diuresis", "EPI 2 ug/min"))))
    text = "\n".join(a.evidence)
    assert "norepinephrine" in text and "diuresis" in text and "not counted" in text and FEVER in text


# The contract's reasonCode rule: only a reason that is explicitly not CRS excludes support.
@pytest.mark.parametrize("reason", [
    "hypotension", "Hypotension due to CRS", "CRS grade 2", "Cytokine release syndrome (disorder)", "shock",
    "circulatory failure", "427573005", "CRS; sepsis ruled out", "CRS grade 3: hypotension, not hypoxic",
    "CRS hypotension, no cause other than CRS identified", "hypotension, not septic", "sepsis ruled out",
    "rule out sepsis", "r/o sepsis", "sepsis workup", "sepsis?", "possible sepsis", "sepsis vs CRS",
    "distributive (non-cardiogenic) shock", "non-cardiogenic pulmonary edema", "suspected CRS", "no sedation",
])
def test_a_reason_that_names_no_other_cause_counts(reason: str) -> None:
    a = grade_crs(CrsInputs(fever=FEVER, vasoactives=vaso(NE, EPI, reason=reason)))
    assert a.grade == 4 and a.hypotension_axis == 4
    assert any(reason in e and "counted" in e and "not counted" not in e for e in a.evidence)


@pytest.mark.parametrize("reason", [
    "cardiogenic shock", "Sepsis", "septic shock", "diuresis", "sedation", "VRE bacteremia", "not CRS",
    "hypotension, not due to CRS", "CRS resolved, not CRS now", "steroids for ICANS", "non-CRS", "non\u2011CRS",
    "not-CRS", "urosepsis", "sepsis; CRS ruled out", "CRS unlikely", "hypotension not responding to fluids, sepsis",
])
def test_a_reason_that_is_explicitly_not_crs_excludes(reason: str) -> None:
    a = grade_crs(CrsInputs(fever=FEVER, vasoactives=vaso(NE, EPI, reason=reason)))
    assert a.grade == 1 and a.hypotension_axis == 0
    assert sum(reason in e and "not counted" in e for e in a.evidence) == 2


def test_oxygen_for_a_non_hypoxia_reason_is_off_the_hypoxia_axis() -> None:
    assert grade_crs(CrsInputs(fever=FEVER, oxygen=o2(D.INVASIVE_VENTILATION, reason="circulatory failure, "
                                                                                     "not for hypoxia"))).grade == 1
    assert grade_crs(CrsInputs(fever=FEVER, oxygen=o2(D.INVASIVE_VENTILATION, reason="circulatory failure"))).grade == 4


def test_not_for_hypoxia_concerns_oxygen_only() -> None:
    reason = "CRS, intubated for circulatory failure, not for hypoxia"
    assert grade_crs(CrsInputs(fever=FEVER, oxygen=o2(D.INVASIVE_VENTILATION, reason=reason))).grade == 1
    assert grade_crs(CrsInputs(fever=FEVER, vasoactives=vaso(NE, EPI, reason=reason))).grade == 4


def test_a_clinician_attribution_excludes_whatever_its_reason_says() -> None:
    item = VasoItem(NE, "CRS resolved (clinician judgement)", "NE 10 ug/min", attributed=True)
    assert grade_crs(CrsInputs(fever=FEVER, vasoactives=(item,))).grade == 1


def test_the_other_causes_are_configurable() -> None:
    inputs = CrsInputs(fever=FEVER, vasoactives=vaso(NE, reason="pancreatitis"))
    assert grade_crs(inputs).grade == 3
    assert grade_crs(inputs, non_crs_causes=("pancreatitis",)).grade == 1
    assert grade_crs(CrsInputs(fever=FEVER, vasoactives=vaso(NE, reason="sepsis")), non_crs_causes=()).grade == 3
    with pytest.raises(ValueError, match="empty entry"):
        Thresholds(non_crs_causes=("sepsis", " "))
    assert Thresholds(non_crs_causes=("Septic  Shock",)).non_crs_causes == ("septic shock",)


def test_low_flow_limit_is_configurable() -> None:
    assert grade_crs(CrsInputs(fever=FEVER, oxygen=o2(D.NASAL_CANNULA, 6)), low_flow_max=5).grade == 3


# ---- the same rules through the fold, from events


def fold(events: list[ClinicalEvent], cfg: Thresholds | None = None) -> PatientState:
    s = PatientState(PID)
    for e in events:
        apply(s, e, cfg or Thresholds())
    return s


FOLD_TABLE: list[tuple[str, list[ClinicalEvent], int]] = [
    ("NE + vasopressin = 3", [car_t(), temp(24, 38.6), infusion(25, "norepinephrine", rate=5, unit="ug/min"),
                              infusion(26, "vasopressin", rate=0.03, unit="U/min")], 3),
    ("NE + phenylephrine = 4", [car_t(), temp(24, 38.6), infusion(25, "norepinephrine"),
                                infusion(26, "phenylephrine")], 4),
    ("6 L/min = 2", [car_t(), temp(24, 38.2), oxygen(25, "nasal_cannula", 6)], 2),
    ("7 L/min = 3", [car_t(), temp(24, 38.2), oxygen(25, "nasal_cannula", 7)], 3),
    ("facemask at any flow = 3", [car_t(), temp(24, 38.2), oxygen(25, "facemask", 1)], 3),
    ("CPAP = 4", [car_t(), temp(24, 38.2), oxygen(25, "cpap")], 4),
    ("hypotension without fever after tocilizumab = 2",
     [car_t(), temp(24, 38.9), dose(25, "tocilizumab", dose=8, unit="mg/kg"), bp(60, 82)], 2),
    ("hypotension without fever and without tocilizumab = 0", [car_t(), temp(24, 38.9), bp(60, 82)], 0),
    ("tocilizumab before any CRS does not waive fever", [car_t(), dose(2, "tocilizumab"), bp(60, 82)], 0),
    ("milrinone excluded", [car_t(), temp(24, 38.2), infusion(25, "milrinone", rate=0.5, unit="ug/kg/min")], 1),
    ("dobutamine excluded", [car_t(), temp(24, 38.2), infusion(25, "dobutamine", rate=5, unit="ug/kg/min")], 1),
    ("epinephrine with a non-CRS reason excluded",
     [car_t(), temp(24, 38.2), infusion(25, "norepinephrine"), infusion(26, "epinephrine", reason="cardiogenic")], 3),
    ("fever expires after 24 h", [car_t(), temp(24, 38.2), temp(49, 37.0)], 0),
    ("a normal reading within 24 h keeps the fever", [car_t(), temp(24, 38.2), temp(30, 37.0)], 1),
    ("SBP 89 is hypotension (in-house 90)", [car_t(), temp(24, 38.2), bp(25, 89)], 2),
    ("SBP 90 is not", [car_t(), temp(24, 38.2), bp(25, 90)], 1),
    ("stopping the only vasopressor drops to the other axes", [car_t(), temp(24, 38.2), infusion(25, "norepinephrine"),
                                                             infusion(30, "norepinephrine", action="stop")], 1),
]


@pytest.mark.parametrize(("name", "events", "grade"), FOLD_TABLE, ids=[t[0] for t in FOLD_TABLE])
def test_astct_rule_through_the_fold(name: str, events: list[ClinicalEvent], grade: int) -> None:
    assert fold(events).crs_grade == grade
