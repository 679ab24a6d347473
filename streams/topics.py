"""Kafka topics of the streaming pipeline and which input topic each event kind goes to.

All input topics are keyed by patient_id and co-partitioned, so one patient's events
meet in one partition number of every topic.
"""

from __future__ import annotations

from models.events import ClinicalEvent

VITALS = "vitals"
LABS = "labs"
TREATMENTS = "treatments"  # infusions, doses, oxygen support, assessments, findings, context, attributions
ALERTS = "crs-alerts"
PATIENT_STATE = "patient-state"
DEAD_LETTER = "dead-letter"

INPUT_TOPICS = (VITALS, LABS, TREATMENTS)


def input_topic(event: ClinicalEvent) -> str:
    if event.kind == "vitals":
        return VITALS
    if event.kind == "lab":
        return LABS
    return TREATMENTS
