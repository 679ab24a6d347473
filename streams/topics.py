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
# Raw hospital feeds, normalised into the input topics by the streaming app (streams.feeds.inputs.normalise).
FHIR_IN = "fhir-in"  # FHIR R4 resources, NDJSON lines or Bundles
HL7_IN = "hl7-in"  # HL7 v2 ORU^R01 messages

INPUT_TOPICS = (VITALS, LABS, TREATMENTS)
# Message header of replayed history (`crswatch publish`): the worker folds it as any input, but its
# event-time lag is not a feed delay, so it is not observed (CrswatchEventLagHigh must not page).
REPLAY_HEADER = "crswatch-replay"


def input_topic(event: ClinicalEvent) -> str:
    if event.kind == "vitals":
        return VITALS
    if event.kind == "lab":
        return LABS
    return TREATMENTS
