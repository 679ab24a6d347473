"""Per-patient state: everything the fold keeps, bounded in size.

Plain slotted dataclasses (fast to update on the hot path); pydantic serialises them
through a TypeAdapter (`state_to_json` / `state_from_json`). Times are POSIX seconds.
Each register that an event sets keeps the event time that set it and only a newer
event replaces it ("latest event time wins"), so a redelivered or late event never
moves state backwards.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field

from pydantic import TypeAdapter

from models.vocabulary import attributes_to_crs


@dataclass(slots=True)
class Support:
    """A running vasoactive infusion or the current oxygen support."""

    name: str  # agent, or oxygen device
    since: float
    changed: float  # event time of the last start/rate change/attribution that touched it
    event_id: str
    rate: float | None = None
    unit: str | None = None
    flow_l_min: float | None = None
    reason: str | None = None
    attributed: bool = False  # a clinician attributed it to `reason`, away from CRS
    at_max_dose: bool = False
    flow_ts: float | None = None  # event time of the oxygen flow reading (flow_l_min)
    segment: str | None = None  # logical id of the infusion segment that set the rate (FHIR resource)


@dataclass(slots=True)
class LabPoint:
    ts: float
    value: float
    comparator: str | None
    unit: str
    event_id: str


@dataclass(slots=True)
class Observation:
    """The latest observation of a yes/no clinical sign (fever, hypotension, a finding)."""

    ts: float
    present: bool
    value: float | None
    event_id: str
    label: str  # what was observed, e.g. "temperature", "documented fever"


@dataclass(slots=True)
class IcansFinding:
    """One ICANS domain as one neurological assessment found it (alerts.icans, ASTCT 2019 domains).

    ``value`` is the domain's value as text: the ICE score ("0".."10", None when the patient could
    not do the test), a Consciousness / Seizure / CerebralEdema value, or "True" / "False" for deep
    focal motor weakness. ``unable_to_perform_ice`` and ``global_aphasia`` belong to the ICE domain.
    Immutable once made (shared between clones).
    """

    ts: float
    event_id: str
    value: str | None
    unable_to_perform_ice: bool = False
    global_aphasia: bool = False


@dataclass(slots=True)
class Track:
    """Alert bookkeeping for one alert kind: activations and the levels already alerted."""

    active: bool = False
    activation: int = 0
    alerted: list[str] = field(default_factory=list)  # levels alerted in this activation


@dataclass(slots=True)
class PatientState:
    patient_id: str
    last_ts: float | None = None  # newest event time applied
    day0_ts: float | None = None  # CAR-T infusion time
    day0_offset_min: int | None = None  # UTC offset (minutes) of the CAR-T dose's time: local Day 0 and clock times
    weight_kg: float | None = None
    immunosuppression: bool | None = None
    baselines: dict[str, LabPoint] = field(default_factory=dict)

    # CRS inputs
    fever: Observation | None = None  # latest counted fever observation (present=True)
    afebrile_ts: float | None = None  # latest documented "afebrile"
    hypotension: Observation | None = None  # latest blood-pressure state (present = hypotensive)
    hypotension_last: Observation | None = None  # latest hypotensive reading (or documented hypotension)
    fluid_bolus: Observation | None = None  # latest fluid bolus not given for a non-CRS cause
    discount_before: dict[str, float] = field(default_factory=dict)  # target -> attribution time
    forward_reason: dict[str, str] = field(default_factory=dict)  # target -> non-CRS reason from now on
    forward_since: dict[str, float] = field(default_factory=dict)
    infusions: dict[str, Support] = field(default_factory=dict)  # running agents
    infusion_changed: dict[str, float] = field(default_factory=dict)  # agent -> time of its last event
    # agent -> its infusion while paused (rate 0 or documented hold): not running, not counted;
    # a later non-zero rate restarts it with the reason it had.
    infusions_paused: dict[str, Support] = field(default_factory=dict)
    oxygen: Support | None = None
    oxygen_changed: float | None = None
    masking_dose_ts: float | None = None
    max_fever_c: tuple[float, float] | None = None  # (ts, highest measured temperature in the fever window)
    max_temp_c: tuple[float, float] | None = None  # (ts, highest measured temperature, febrile or not, likewise)

    # CRS grade and episodes
    crs_grade: int = 0
    episode: int = 0
    episode_onset: float | None = None
    episode_peak: int = 0
    grade_at_least_refractory_since: float | None = None
    episode_il6_ts: float | None = None
    episode_steroid_ts: float | None = None
    crs_episodes_seen: int = 0
    episode_end_ts: float | None = None  # when the last episode resolved (grade back to 0)
    support_version: int = 0  # bumped whenever running support or its attribution changes
    crs_sig: tuple[bool | int | str | None, ...] | None = None  # inputs of the last grading (fast path)
    iec_eval_ts: float | None = None

    # Vasopressor and oxygen courses
    vaso_course: int = 0
    inotrope_course: int = 0
    nee_min: float | None = None
    oxygen_course: int = 0

    # Labs and findings (latest few per analyte, in collection-time order)
    labs: dict[str, list[LabPoint]] = field(default_factory=dict)
    findings: dict[str, Observation] = field(default_factory=dict)
    il6_blockade_ts: float | None = None
    steroid_ts: float | None = None  # latest corticosteroid given for CRS (or for no other stated cause)

    # IEC-HS and ICANS
    iec_hs_level: int = 0
    iec_hs_criteria: tuple[str, ...] = ()
    iec_hs_onset_ts: float | None = None  # when the current IEC-HS suspicion (level > 0) began
    icans_grade: int = 0
    # domain -> its findings that can still count, oldest first; the last one is the domain's latest
    # assessment, the others are earlier, more severe findings still held (alerts.icans.add_finding).
    icans_domains: dict[str, list[IcansFinding]] = field(default_factory=dict)
    icans_ts: float | None = None  # newest neurological assessment applied

    tracks: dict[str, Track] = field(default_factory=dict)

    def clone(self) -> PatientState:
        """An independent copy, field by field (copy.deepcopy is ~30x slower).

        Immutable values (floats, tuples, strings, Observation and LabPoint, which are
        replaced rather than changed) are shared; containers and the objects the fold
        changes in place (Support, Track) are copied.
        """
        c = copy.copy(self)
        c.baselines = dict(self.baselines)
        c.discount_before = dict(self.discount_before)
        c.forward_reason = dict(self.forward_reason)
        c.forward_since = dict(self.forward_since)
        c.infusions = {k: copy.copy(v) for k, v in self.infusions.items()}
        c.infusion_changed = dict(self.infusion_changed)
        c.infusions_paused = {k: copy.copy(v) for k, v in self.infusions_paused.items()}
        c.oxygen = copy.copy(self.oxygen) if self.oxygen is not None else None
        c.labs = {k: list(v) for k, v in self.labs.items()}
        c.findings = dict(self.findings)
        c.icans_domains = {k: list(v) for k, v in self.icans_domains.items()}
        c.tracks = {k: Track(t.active, t.activation, list(t.alerted)) for k, t in self.tracks.items()}
        return c


LABS_KEPT_PER_ANALYTE = 3
# Ferritin keeps more: its rapid-rise rule looks at every value of a window (alerts.iec_hs), and a
# q6-12h series fills three places within a day.
LABS_KEPT_BY_ANALYTE: dict[str, int] = {"ferritin": 8}


def labs_kept(analyte: str) -> int:
    return LABS_KEPT_BY_ANALYTE.get(analyte, LABS_KEPT_PER_ANALYTE)

_STATE_ADAPTER: TypeAdapter[PatientState] = TypeAdapter(PatientState)


def state_to_json(state: PatientState) -> bytes:
    return _STATE_ADAPTER.dump_json(state)


def state_value(state: PatientState) -> object:
    """The state as plain JSON values, for comparisons where dict key order carries no meaning."""
    return json.loads(state_to_json(state))


def state_from_json(data: bytes | str) -> PatientState:
    obj = json.loads(data)
    for sup in [*(obj.get("infusions") or {}).values(), obj.get("oxygen")]:
        if isinstance(sup, dict) and "attributed" not in sup:
            # Stored before Support.attributed existed, when any reason but a name of CRS excluded the
            # support: keep that exclusion, so that an upgrade does not change a stored grade.
            sup["attributed"] = not attributes_to_crs(sup.get("reason"))
    old_icans = obj.pop("icans_inputs", None)
    if isinstance(old_icans, dict) and "icans_domains" not in obj:
        obj["icans_domains"] = _icans_domains_of(old_icans, obj.get("icans_ts"))
    return _STATE_ADAPTER.validate_python(obj)


_OLD_ICANS_DOMAINS = ("consciousness", "seizure", "motor_weakness", "cerebral_edema")


def _icans_domains_of(inputs: dict[str, str], ts: float | None) -> dict[str, list[dict[str, object]]]:
    """A state stored when the newest assessment replaced the whole ICANS assessment (`icans_inputs`,
    domain -> value, all of one event at `icans_ts`): each domain it gave becomes that domain's latest
    finding, so the stored grade is graded again from the same values."""
    if ts is None or not inputs:
        return {}
    event_id = inputs.get("event_id", "?")
    out: dict[str, list[dict[str, object]]] = {}
    unable = inputs.get("unable_to_perform_ice") == "True"
    aphasia = inputs.get("global_aphasia") == "True"
    if "ice_score" in inputs or unable or aphasia:
        out["ice_score"] = [{"ts": ts, "event_id": event_id, "value": inputs.get("ice_score"),
                             "unable_to_perform_ice": unable, "global_aphasia": aphasia}]
    for domain in _OLD_ICANS_DOMAINS:
        if domain in inputs:
            out[domain] = [{"ts": ts, "event_id": event_id, "value": inputs[domain]}]
    return out
