"""ICANS grading (Lee et al. 2019, ASTCT 2019 adult table [V2])."""

from __future__ import annotations

import pytest

from alerts.icans import (
    CONSCIOUSNESS_DOMAIN,
    EDEMA_DOMAIN,
    ICE_DOMAIN,
    MOTOR_DOMAIN,
    SEIZURE_DOMAIN,
    IcansGrade,
    IcansInput,
    grade_icans,
)
from models.vocabulary import CerebralEdema, Consciousness, Seizure

ALL_DOMAINS = (ICE_DOMAIN, CONSCIOUSNESS_DOMAIN, SEIZURE_DOMAIN, MOTOR_DOMAIN, EDEMA_DOMAIN)


# ICE score row: 10 = 0; 7-9 = 1; 3-6 = 2; 0-2 = 3; 0 and unable to perform ICE (unarousable) = 4.
@pytest.mark.parametrize(
    ("ice", "expected"),
    [
        (10, 0),
        (9, 1),
        (8, 1),
        (7, 1),
        (6, 2),
        (5, 2),
        (4, 2),
        (3, 2),
        (2, 3),
        (1, 3),
        (0, 3),
    ],
)
def test_ice_score_bands(ice: int, expected: int) -> None:
    result = grade_icans(IcansInput(ice_score=ice))
    assert result.grade == expected
    assert result.evidence == (f"ICE score {ice}/10 -> grade {expected}",)
    assert result.missing == (CONSCIOUSNESS_DOMAIN, SEIZURE_DOMAIN, MOTOR_DOMAIN, EDEMA_DOMAIN)


@pytest.mark.parametrize(
    ("x", "expected", "evidence_part"),
    [
        # Grade-4 ICE row: 0, unarousable and unable to perform ICE.
        (IcansInput(ice_score=0, unable_to_perform_ice=True, consciousness=Consciousness.UNAROUSABLE), 4,
         "unarousable"),
        (IcansInput(unable_to_perform_ice=True, consciousness=Consciousness.UNAROUSABLE), 4, "unarousable"),
        # Unarousable is not imputed: without it, unable to perform ICE is at least grade 3.
        (IcansInput(ice_score=0, unable_to_perform_ice=True), 3, "consciousness not documented"),
        (IcansInput(unable_to_perform_ice=True), 3, "consciousness not documented"),
        # "ICE 0 while awake with global aphasia counts as grade 3, not grade 4."
        (IcansInput(ice_score=0, global_aphasia=True), 3, "global aphasia"),
        (IcansInput(ice_score=0, unable_to_perform_ice=True, global_aphasia=True), 3, "global aphasia"),
        (IcansInput(unable_to_perform_ice=True, global_aphasia=True), 3, "global aphasia"),
        (IcansInput(global_aphasia=True), 3, "global aphasia"),
    ],
)
def test_ice_zero_unable_and_aphasia(x: IcansInput, expected: int, evidence_part: str) -> None:
    result = grade_icans(x)
    assert result.grade == expected
    assert evidence_part in result.evidence[0]
    assert ICE_DOMAIN not in result.missing


def test_unable_to_perform_ice_while_arousable_is_ice_grade_3() -> None:
    result = grade_icans(IcansInput(unable_to_perform_ice=True, consciousness=Consciousness.AWAKENS_TO_VOICE))
    assert result.grade == 3
    assert result.evidence[0].endswith("-> grade 3")
    assert result.evidence[1] == "consciousness: awakens to voice -> grade 2"


def test_unable_to_perform_ice_and_unarousable_is_grade_4() -> None:
    result = grade_icans(IcansInput(unable_to_perform_ice=True, consciousness=Consciousness.UNAROUSABLE))
    assert result.grade == 4
    assert result.evidence[0].endswith("-> grade 4")


def test_global_aphasia_does_not_cap_an_unarousable_patient() -> None:
    # The aphasia rule caps only the ICE domain; the consciousness domain still grades 4.
    result = grade_icans(IcansInput(ice_score=0, global_aphasia=True, consciousness=Consciousness.UNAROUSABLE))
    assert result.grade == 4


@pytest.mark.parametrize(
    ("level", "expected"),
    [
        (Consciousness.AWAKENS_SPONTANEOUSLY, 1),
        (Consciousness.AWAKENS_TO_VOICE, 2),
        (Consciousness.AWAKENS_TO_TACTILE, 3),
        (Consciousness.UNAROUSABLE, 4),
    ],
)
def test_consciousness_rows(level: Consciousness, expected: int) -> None:
    result = grade_icans(IcansInput(consciousness=level))
    assert result.grade == expected
    assert result.evidence == (f"consciousness: {level.value.replace('_', ' ')} -> grade {expected}",)
    assert result.missing == (ICE_DOMAIN, SEIZURE_DOMAIN, MOTOR_DOMAIN, EDEMA_DOMAIN)


@pytest.mark.parametrize(
    ("seizure", "expected", "evidence"),
    [
        (Seizure.NONE, 0, "no seizure -> grade 0"),
        (Seizure.RAPIDLY_RESOLVING, 3, "seizure: rapidly resolving -> grade 3"),
        (Seizure.PROLONGED_OR_REPETITIVE, 4, "seizure: prolonged or repetitive -> grade 4"),
    ],
)
def test_seizure_rows(seizure: Seizure, expected: int, evidence: str) -> None:
    result = grade_icans(IcansInput(seizure=seizure))
    assert result.grade == expected
    assert result.evidence == (evidence,)


@pytest.mark.parametrize(
    ("weakness", "expected", "evidence"),
    [
        (False, 0, "no deep focal motor weakness -> grade 0"),
        (True, 4, "deep focal motor weakness -> grade 4"),
    ],
)
def test_motor_rows(weakness: bool, expected: int, evidence: str) -> None:
    result = grade_icans(IcansInput(motor_weakness=weakness))
    assert result.grade == expected
    assert result.evidence == (evidence,)


@pytest.mark.parametrize(
    ("edema", "expected", "evidence"),
    [
        (CerebralEdema.NONE, 0, "no cerebral edema -> grade 0"),
        (CerebralEdema.FOCAL, 3, "cerebral edema: focal -> grade 3"),
        (CerebralEdema.DIFFUSE, 4, "cerebral edema: diffuse -> grade 4"),
    ],
)
def test_edema_rows(edema: CerebralEdema, expected: int, evidence: str) -> None:
    result = grade_icans(IcansInput(cerebral_edema=edema))
    assert result.grade == expected
    assert result.evidence == (evidence,)


@pytest.mark.parametrize(
    ("x", "expected"),
    [
        (IcansInput(ice_score=9, seizure=Seizure.RAPIDLY_RESOLVING), 3),
        (IcansInput(ice_score=2, consciousness=Consciousness.AWAKENS_TO_VOICE), 3),
        (IcansInput(ice_score=8, consciousness=Consciousness.AWAKENS_TO_VOICE), 2),
        (IcansInput(ice_score=10, cerebral_edema=CerebralEdema.DIFFUSE), 4),
        (IcansInput(ice_score=5, motor_weakness=True, seizure=Seizure.NONE), 4),
        (
            IcansInput(
                ice_score=7,
                consciousness=Consciousness.AWAKENS_SPONTANEOUSLY,
                seizure=Seizure.NONE,
                motor_weakness=False,
                cerebral_edema=CerebralEdema.FOCAL,
            ),
            3,
        ),
    ],
)
def test_most_severe_domain_sets_the_grade(x: IcansInput, expected: int) -> None:
    assert grade_icans(x).grade == expected


def test_all_known_domains_normal_is_grade_0() -> None:
    result = grade_icans(
        IcansInput(ice_score=10, seizure=Seizure.NONE, motor_weakness=False, cerebral_edema=CerebralEdema.NONE)
    )
    assert result.grade == 0
    assert len(result.evidence) == 4
    # The table has no "normal" level of consciousness; not given, so listed, not imputed.
    assert result.missing == (CONSCIOUSNESS_DOMAIN,)


def test_nothing_known_is_no_grade() -> None:
    assert grade_icans(IcansInput()) == IcansGrade(grade=None, evidence=(), missing=ALL_DOMAINS)


def test_every_domain_known_lists_nothing_missing() -> None:
    result = grade_icans(
        IcansInput(
            ice_score=6,
            consciousness=Consciousness.AWAKENS_TO_VOICE,
            seizure=Seizure.NONE,
            motor_weakness=False,
            cerebral_edema=CerebralEdema.NONE,
        )
    )
    assert result.grade == 2
    assert result.missing == ()
    assert len(result.evidence) == 5


def test_case_000_single_ice_9_is_grade_1_by_table() -> None:
    # Ruemmele 2025 (case 000): one ICE score of 9/10 -> ICANS grade 1 by table (authors judged it not ICANS).
    result = grade_icans(IcansInput(ice_score=9))
    assert result.grade == 1
    assert result.evidence == ("ICE score 9/10 -> grade 1",)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"ice_score": 11},
        {"ice_score": -1},
        {"ice_score": True},
        {"ice_score": 5, "unable_to_perform_ice": True},
        {"ice_score": 1, "global_aphasia": True},
    ],
)
def test_invalid_input_is_rejected(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        IcansInput(**kwargs)  # type: ignore[arg-type]


def test_results_are_frozen() -> None:
    result = grade_icans(IcansInput(ice_score=9))
    with pytest.raises(AttributeError):
        result.grade = 2  # type: ignore[misc]
