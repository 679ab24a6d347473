"""Clinical events: one discriminated union, validated and unit-normalised at the boundary.

The input log is the truth; each event is immutable once validated. Event time
(`time`) is the physiologically relevant time (collection time for labs);
`recorded_time` is when the fact became known (result time).
"""

from __future__ import annotations

import json
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

from models.units import (
    RATE_UNITS,
    VITAL_UNITS,
    WEIGHT_UNITS,
    UnitError,
    canonical_unit_name,
    is_finite_number,
    normalise_lab_noted,
    normalise_rate_unit,
    normalise_vital_noted,
    normalise_weight_kg,
    resolve_unit,
)
from models.vocabulary import (
    AttributionTarget,
    CerebralEdema,
    Consciousness,
    DrugClass,
    FindingKind,
    LabAnalyte,
    OxygenDevice,
    Seizure,
    VasoactiveAgent,
)

# Bounded rejection categories: safe as a metric label and for routing dead letters.
# "unsupported": a code, unit, status or message type outside the input contracts; "not_hl7": bytes
# that do not parse as an HL7 v2 message.
REJECT_CATEGORIES = ("not_json", "unknown_kind", "missing_field", "invalid_value", "unsupported", "not_hl7")


class InvalidEvent(ValueError):
    """Input that is not a valid clinical event. `field` names the offending field;
    `category` is one of REJECT_CATEGORIES."""

    def __init__(self, field: str, reason: str, category: str = "invalid_value") -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason
        self.category = category if category in REJECT_CATEGORIES else "invalid_value"


class Provenance(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    source: str = Field(min_length=1, description="Feed, device or document the event came from.")
    quote: str | None = Field(default=None, description="Quoted source sentence (case files).")
    assumption: str | None = Field(
        default=None, description="What the text did not give and what was assumed instead."
    )


def _note_units(model: _EventBase, notes: list[str]) -> None:
    """Record the unit aliases read at validation in the event's provenance (never silently)."""
    if not notes:
        return
    prov = model.provenance
    text = "; ".join(notes)
    if prov.assumption and text in prov.assumption:
        return  # already recorded (an event read back from its own dump)
    assumption = f"{prov.assumption}; {text}" if prov.assumption else text
    object.__setattr__(model, "provenance", prov.model_copy(update={"assumption": assumption}))


class _CachedTimestamp:
    """Like functools.cached_property for `time.timestamp()`, without its lock (hot path)."""

    def __get__(self, obj: _EventBase | None, owner: type | None = None) -> float:
        if obj is None:
            return 0.0
        value = obj.time.timestamp()
        obj.__dict__["ts"] = value
        return value


class _EventBase(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    event_id: str = Field(min_length=1, max_length=256)
    patient_id: str = Field(min_length=1, max_length=256)
    time: AwareDatetime
    recorded_time: AwareDatetime | None = None
    provenance: Provenance
    # Identity across versions (FHIR: resource type and id). Events sharing a logical_id and a
    # version come from one source record; a higher version replaces them all (alerts.log).
    logical_id: str | None = Field(default=None, min_length=1, max_length=256)
    version: int | None = Field(default=None, ge=0)

    # Event time as POSIX seconds (ordering and windows): a plain instance attribute after first use.
    ts: ClassVar[_CachedTimestamp] = _CachedTimestamp()


def _finite(value: float, field: str) -> float:
    if not is_finite_number(value):
        raise ValueError(f"{field} must be a finite number")
    return value


class Measurement(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    # finite checked by pydantic-core (Rust), not a Python validator: the hot path of every vital
    # sign; _first_error gives it the same reason text ("value must be a finite number")
    value: float = Field(allow_inf_nan=False)
    unit: str = Field(min_length=1)


# Physiologically possible ranges (canonical units). Outside them the event is rejected
# (FHIR input contract: "a physiologically impossible value ... is rejected").
VITAL_LIMITS: dict[str, tuple[float, float]] = {
    "temperature": (25.0, 45.0),  # contract: below 25 or above 45 degC is impossible
    "heart_rate": (0.0, 350.0),
    "sbp": (0.0, 350.0),
    "dbp": (0.0, 300.0),
    "map": (0.0, 300.0),
    "spo2": (0.0, 100.0),
    "resp_rate": (0.0, 150.0),
}


class VitalSigns(_EventBase):
    """One set of bedside vitals; any subset of measures may be present."""

    kind: Literal["vitals"] = "vitals"
    temperature: Measurement | None = None
    heart_rate: Measurement | None = None
    sbp: Measurement | None = None
    dbp: Measurement | None = None
    map: Measurement | None = None
    spo2: Measurement | None = None
    resp_rate: Measurement | None = None

    @model_validator(mode="after")
    def _normalise(self) -> VitalSigns:
        present = False
        notes: list[str] = []
        given = self.__pydantic_fields_set__
        for measure, (low, high) in VITAL_LIMITS.items():
            if measure not in given:
                continue
            m: Measurement | None = getattr(self, measure)
            if m is None:
                continue
            present = True
            if m.unit == VITAL_UNITS[measure][0]:
                value, unit, note = m.value, m.unit, None  # the canonical unit: what normalise_vital_noted gives
            else:
                try:
                    value, unit, note = normalise_vital_noted(measure, m.value, m.unit)
                except UnitError as exc:
                    raise ValueError(f"{measure}.unit: {exc}") from None
            if note:
                notes.append(f"{measure} {note}")
            if not low <= value <= high:
                raise ValueError(f"{measure}.value: {value:g} {unit} is outside the possible range {low:g}-{high:g}")
            if value != m.value or unit != m.unit:
                object.__setattr__(self, measure, Measurement(value=value, unit=unit))
        if not present:
            raise ValueError("a vitals event needs at least one measure")
        _note_units(self, notes)
        return self


class OxygenSupport(_EventBase):
    """The current oxygen support; a new one replaces the previous (room_air ends support).

    Without a device it is a flow or FiO2 reading (FHIR 3151-8 / 3150-0 on their own) that
    updates the running support; see alerts.evolve.on_oxygen.
    """

    kind: Literal["oxygen"] = "oxygen"
    device: OxygenDevice | None = None
    flow_l_min: float | None = Field(default=None, ge=0.0, le=80.0)
    fio2_pct: float | None = Field(default=None, ge=21.0, le=100.0)
    reason: str | None = None

    @model_validator(mode="after")
    def _something(self) -> OxygenSupport:
        if self.device is None and self.flow_l_min is None and self.fio2_pct is None:
            raise ValueError("device: an oxygen event needs a device, a flow or an FiO2")
        return self


# Rate units per agent (FHIR R4 input contract, MedicationAdministration table).
_PER_MIN_OR_KG = frozenset({"ug/min", "ug/kg/min"})
AGENT_RATE_UNITS: dict[VasoactiveAgent, frozenset[str]] = {
    VasoactiveAgent.NOREPINEPHRINE: _PER_MIN_OR_KG,
    VasoactiveAgent.EPINEPHRINE: _PER_MIN_OR_KG,
    VasoactiveAgent.PHENYLEPHRINE: _PER_MIN_OR_KG,
    VasoactiveAgent.METARAMINOL: _PER_MIN_OR_KG,
    VasoactiveAgent.DOPAMINE: frozenset({"ug/kg/min"}),
    VasoactiveAgent.DOBUTAMINE: frozenset({"ug/kg/min"}),
    VasoactiveAgent.MILRINONE: frozenset({"ug/kg/min"}),
    VasoactiveAgent.VASOPRESSIN: frozenset({"U/min", "U/h"}),
    VasoactiveAgent.ANGIOTENSIN_II: frozenset({"ng/kg/min"}),
}


class Infusion(_EventBase):
    """A vasoactive infusion segment: start, rate change or stop.

    `hold` (documented hold), or a start or rate change to rate 0, pauses the agent: it is not
    running (alerts.evolve.on_infusion) until a later start or rate change with a rate above 0.
    """

    kind: Literal["infusion"] = "infusion"
    action: Literal["start", "rate_change", "stop", "hold"]
    agent: VasoactiveAgent
    rate: float | None = Field(default=None, ge=0.0, le=10_000.0)  # above: a unit or entry error
    unit: str | None = None
    reason: str | None = None
    at_max_dose: bool = Field(default=False, description='Documented "at or near maximal dose".')

    @model_validator(mode="after")
    def _rate_unit(self) -> Infusion:
        if self.rate is not None:
            _finite(self.rate, "rate")
            if self.unit is None:
                raise ValueError("unit: a rate needs a unit")
        if self.unit is not None:
            try:
                unit = normalise_rate_unit(self.unit)
            except UnitError as exc:
                raise ValueError(f"unit: {exc}") from None
            note = resolve_unit(self.unit, RATE_UNITS)[1]
            if note:
                _note_units(self, [f"rate {note}"])
            allowed = AGENT_RATE_UNITS[self.agent]
            if unit not in allowed:
                raise ValueError(f"unit: {unit} is not a rate unit for {self.agent.value}; accepted: "
                                 f"{', '.join(sorted(allowed))}")
            object.__setattr__(self, "unit", unit)
        return self


class DrugDose(_EventBase):
    """A drug given as a dose (tocilizumab, steroids, the CAR-T product itself, ...)."""

    kind: Literal["dose"] = "dose"
    drug: str = Field(min_length=1, max_length=128, description="Generic name, lower case.")
    dose: float | None = Field(default=None, ge=0.0)
    unit: str | None = None
    reason: str | None = None
    drug_class: DrugClass | None = Field(
        default=None, description="Overrides the class looked up from the name (investigational products)."
    )

    @field_validator("drug")
    @classmethod
    def _lower(cls, v: str) -> str:
        return v.strip().lower()


LabComparator = Literal["<", "<=", ">=", ">"]


def _normalise_lab_in_place(model: BaseModel, analyte: LabAnalyte, value: float, unit: str) -> str | None:
    """Convert a validated (frozen) lab-valued model to the analyte's canonical unit; the alias note."""
    _finite(value, "value")
    try:
        new_value, new_unit, note = normalise_lab_noted(analyte.value, value, unit)
    except UnitError as exc:
        raise ValueError(f"unit: {exc}") from None
    object.__setattr__(model, "value", new_value)
    object.__setattr__(model, "unit", new_unit)
    return f"{analyte.value} {note}" if note else None


class LabResult(_EventBase):
    """A lab value at its collection time (`time`); `recorded_time` is the result time."""

    kind: Literal["lab"] = "lab"
    analyte: LabAnalyte
    value: float = Field(ge=0.0)
    unit: str
    comparator: LabComparator | None = None

    @model_validator(mode="after")
    def _normalise(self) -> LabResult:
        note = _normalise_lab_in_place(self, self.analyte, self.value, self.unit)
        _note_units(self, [note] if note else [])
        return self


class NeuroAssessment(_EventBase):
    """ICE score and ICANS domains (ASTCT 2019, Lee et al.); any subset may be present."""

    kind: Literal["neuro"] = "neuro"
    ice_score: int | None = Field(default=None, ge=0, le=10)
    consciousness: Consciousness | None = None
    seizure: Seizure | None = None
    motor_weakness: bool | None = None
    cerebral_edema: CerebralEdema | None = None
    unable_to_perform_ice: bool = False
    global_aphasia: bool = False

    @model_validator(mode="after")
    def _consistent(self) -> NeuroAssessment:
        if self.ice_score is not None and self.ice_score > 0:
            if self.unable_to_perform_ice:
                raise ValueError(f"ice_score: {self.ice_score}/10 contradicts unable_to_perform_ice")
            if self.global_aphasia:
                raise ValueError(f"ice_score: {self.ice_score}/10 contradicts global aphasia (ICE 0 while awake)")
        return self


class BaselineValue(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    analyte: LabAnalyte
    value: float = Field(ge=0.0)
    unit: str
    comparator: LabComparator | None = None
    _unit_note: str | None = PrivateAttr(default=None)  # the alias read, for the context's provenance

    @model_validator(mode="after")
    def _normalise(self) -> BaselineValue:
        self._unit_note = _normalise_lab_in_place(self, self.analyte, self.value, self.unit)
        return self


class PatientContext(_EventBase):
    """Weight, baseline lab values and other context that later rules need."""

    kind: Literal["context"] = "context"
    weight: Measurement | None = None
    baselines: tuple[BaselineValue, ...] = ()
    immunosuppression: bool | None = Field(default=None, description="HScore item: known underlying immunosuppression.")

    @model_validator(mode="after")
    def _weight(self) -> PatientContext:
        notes = [f"baseline {b._unit_note}" for b in self.baselines if b._unit_note]
        if self.weight is not None:
            try:
                kg = normalise_weight_kg(self.weight.value, self.weight.unit)
            except UnitError as exc:
                raise ValueError(f"weight.unit: {exc}") from None
            note = resolve_unit(self.weight.unit, WEIGHT_UNITS)[1]
            if note:
                notes.append(f"weight {note}")
            if not 0.3 <= kg <= 500.0:
                raise ValueError(f"weight.value: {kg:g} kg is outside the possible range 0.3-500")
            object.__setattr__(self, "weight", Measurement(value=kg, unit="kg"))
        _note_units(self, notes)
        return self


class Finding(_EventBase):
    """A clinician-documented finding without a number ("fever", "pancytopenia")."""

    kind: Literal["finding"] = "finding"
    finding: FindingKind
    present: bool = True
    reason: str | None = None


class Attribution(_EventBase):
    """A documented clinical judgement that changes the reason of support or findings.

    - Ongoing support named by `targets` (oxygen, vasopressors, optionally one `agent`)
      takes `reason` from `time` on; support started later carries its own reason.
    - Findings named by `targets` (fever, hypotension, ICANS) observed up to `time` stop
      counting; with `forward=True` later findings of that kind are attributed too,
      until an attribution with reason "crs" for the same target. A reason that names CRS
      (models.vocabulary.CRS_REASONS; for "icans" also ICANS_REASONS) keeps the findings counted.
    - "all" covers every target (e.g. "no signs of active CRS").
    Nothing is deleted: the observations stay in the state and in the log.
    """

    kind: Literal["attribution"] = "attribution"
    targets: tuple[AttributionTarget, ...] = Field(min_length=1)
    reason: str = Field(min_length=1)
    agent: VasoactiveAgent | None = None
    forward: bool = False


class Retract(_EventBase):
    """Voids every event whose logical_id is `retracts` (FHIR status entered-in-error).

    `version` orders it against the versions of that record: an older version arriving
    after it is ignored; a newer one stands again. alerts.log removes the voided events and
    folds again inside the lateness window; beyond it the effect cannot be undone and the
    log says so (models.records.Notice).
    """

    kind: Literal["retract"] = "retract"
    retracts: str = Field(min_length=1, max_length=256)


ClinicalEvent = Annotated[
    VitalSigns
    | OxygenSupport
    | Infusion
    | DrugDose
    | LabResult
    | NeuroAssessment
    | PatientContext
    | Finding
    | Attribution
    | Retract,
    Field(discriminator="kind"),
]

EVENT_KINDS: tuple[str, ...] = (
    "vitals",
    "oxygen",
    "infusion",
    "dose",
    "lab",
    "neuro",
    "context",
    "finding",
    "attribution",
    "retract",
)

_ADAPTER: TypeAdapter[ClinicalEvent] = TypeAdapter(ClinicalEvent)


def _first_error(exc: ValidationError) -> InvalidEvent:
    err = exc.errors(include_url=False)[0]
    loc = [str(p) for p in err.get("loc", ())]
    # Drop the discriminator tag pydantic puts first in the location of union members.
    if loc and loc[0] in EVENT_KINDS:
        loc = loc[1:]
    msg = str(err.get("msg", "invalid"))
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, ") :]
    field = ".".join(loc) if loc else msg.split(":", 1)[0] if ":" in msg else "event"
    if not loc and ":" in msg:
        field, msg = (part.strip() for part in msg.split(":", 1))
    category = "missing_field" if err.get("type") == "missing" else "invalid_value"
    if err.get("type") == "finite_number" and loc:
        msg = f"{loc[-1]} must be a finite number"  # the text of _finite, for the Rust-side check
    if err.get("type") == "union_tag_invalid":
        field, msg, category = "kind", f"unknown event kind; expected one of: {', '.join(EVENT_KINDS)}", "unknown_kind"
    elif err.get("type") == "union_tag_not_found":
        field, msg, category = "kind", "missing event kind", "missing_field"
    elif err.get("type") == "json_invalid":
        field, msg, category = "event", f"not valid JSON: {msg}", "not_json"
    elif err.get("type") == "dict_type" and not loc:
        field, msg, category = "event", "not a JSON object", "not_json"
    return InvalidEvent(field, msg, category)


def parse_event(raw: bytes | str | dict[str, Any]) -> ClinicalEvent:
    """Validate one event. Raises InvalidEvent naming the field on any problem."""
    try:
        if isinstance(raw, dict):
            return _ADAPTER.validate_python(raw)
        return _ADAPTER.validate_json(raw)
    except ValidationError as exc:
        raise _first_error(exc) from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidEvent("event", f"not valid JSON: {exc}", "not_json") from None


__all__ = [
    "EVENT_KINDS",
    "REJECT_CATEGORIES",
    "Attribution",
    "BaselineValue",
    "ClinicalEvent",
    "DrugDose",
    "Finding",
    "Infusion",
    "InvalidEvent",
    "LabResult",
    "Measurement",
    "NeuroAssessment",
    "OxygenSupport",
    "PatientContext",
    "Provenance",
    "Retract",
    "VitalSigns",
    "canonical_unit_name",
    "parse_event",
]
