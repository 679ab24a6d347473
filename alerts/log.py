"""Event time, idempotency and corrections around the fold.

A patient's log keeps
- `settled`: the fold of every event before `pending` (all of them older than the
  lateness window when it was taken),
- `pending`: the events after it, sorted by (event time, event_id), attributions last at their
  instant (`_key`); the last
  `lateness_minutes` of them can still be re-ordered,
- `head`: settled + pending folded in order: the current state,
- `checkpoints`: in-memory copies of the state every CHECKPOINT_EVERY pending events.

An event in order is folded into `head` directly. An event that arrives out of order
but inside the window is inserted and the events after the nearest checkpoint are
folded again; records that the new order adds are emitted with `correction=True`, and
records it takes back are emitted as `Retraction`s. So the final state and the alert
ids do not depend on the arrival order within the window. `settled` advances by
adopting a checkpoint once every event before it is older than the window, so no event
is folded twice on the normal path.

Versioned records (`logical_id`, `version`; FHIR resource id and meta.versionId): a
higher version replaces every pending event of that logical id and a `Retract`
(entered-in-error) removes them; either way the window is folded again from the nearest
checkpoint and the difference is emitted as corrections and retractions, exactly like a
late event. A version older than the one applied, or any version of a voided record, is
`superseded` (ignored, counted). Beyond the window the earlier version is already part of
the settled state and cannot be taken out: a correction is applied at its own time on
top of it and a retraction changes nothing; both emit a `Notice` saying so (never
silently). The last RETIRED_KEPT logical ids without pending events are remembered for
this (bounded, like the id ring); an older one is unknown.

An event older than the window is folded at its arrival position (keyed just after the
newest pending event) and marked `late`, so the log stays one ordered sequence and
`head` is always `settled` + `pending` folded in order. A duplicate `event_id` inside the window changes
nothing; older duplicates are recognised by a bounded ring of ids (vitals need none:
the fold's registers keep the newest reading, so a re-applied old one is a no-op).
"""

from __future__ import annotations

import bisect
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from alerts.config import Thresholds
from alerts.fold import apply, copy_lab_part, day_of, iso
from models.events import Attribution, ClinicalEvent, Finding, LabResult, Retract, VitalSigns, parse_event
from models.records import Alert, IecHsChange, Notice, Outcome, Record, Retraction, record_key
from models.state import PatientState, state_from_json, state_to_json
from models.units import VITAL_UNITS
from models.vocabulary import FindingKind

# Tests set this to run the full re-fold beside every lab fast path and compare (tests/conftest.py).
VERIFY_FAST_PATH = False
SETTLED_IDS_KEPT = 256
EMITTED_ALERTS_KEPT = 256
CHECKPOINT_EVERY = 32
RETIRED_KEPT = 1024


# A clinician's attribution applies to what was charted up to and including its instant: it is
# ordered after every other event of the same time, so that support started at that instant is
# covered whichever event_id either has ("~" sorts after the characters of ids; "~~" after the
# FHIR adapter's "~" stop ids too). A documented infection is context for the signs of its
# instant (alerts.fold._infection): ordered before them.
_LAST_AT_INSTANT = "~~"
_FIRST_AT_INSTANT = "\x01"


def _key(ev: ClinicalEvent) -> tuple[float, str]:
    if isinstance(ev, Attribution):
        return (ev.ts, _LAST_AT_INSTANT + ev.event_id)
    if isinstance(ev, Finding) and ev.finding is FindingKind.INFECTION:
        return (ev.ts, _FIRST_AT_INSTANT + ev.event_id)
    return (ev.ts, ev.event_id)


@dataclass(slots=True)
class PatientLog:
    settled: PatientState
    head: PatientState
    pending: list[ClinicalEvent] = field(default_factory=list)
    pending_keys: list[tuple[float, str]] = field(default_factory=list)
    pending_ids: set[str] = field(default_factory=set)
    # What each pending event emitted (aligned with `pending`): a re-order diffs against it.
    pending_records: list[list[Record]] = field(default_factory=list)
    # k -> state after pending[:k], for k a multiple of CHECKPOINT_EVERY. Not stored.
    checkpoints: dict[int, PatientState] = field(default_factory=dict)
    max_ts: float | None = None
    # Ids of the most recent settled events other than vitals (bounded): a redelivered
    # dose, lab or support event older than the window is recognised as a duplicate.
    settled_ids: list[str] = field(default_factory=list)
    # Ids of the alerts emitted (bounded): an alert raised on the late path and raised again
    # by a later re-fold is not emitted twice.
    emitted_alerts: list[str] = field(default_factory=list)
    late_ids: set[str] = field(default_factory=set)  # pending events that arrived beyond the window
    # logical_id -> (version, number of pending events) for pending versioned events.
    pending_logical: dict[str, tuple[int | None, int]] = field(default_factory=dict)
    # logical_id -> (version, voided) for logical ids without pending events: settled, or
    # voided by a Retract. Bounded (RETIRED_KEPT, oldest forgotten first).
    retired: dict[str, tuple[int | None, bool]] = field(default_factory=dict)

    @property
    def state(self) -> PatientState:
        return self.head


@dataclass(frozen=True, slots=True)
class StepResult:
    outcome: Outcome
    records: list[Record]  # read-only: results without records share one empty list
    reason: str | None = None


_APPLIED_NOTHING = StepResult("applied", [])


def new_log(patient_id: str) -> PatientLog:
    return PatientLog(settled=PatientState(patient_id), head=PatientState(patient_id))


def _remember(log: PatientLog, ev: ClinicalEvent) -> None:
    if ev.kind != "vitals":
        log.settled_ids.append(ev.event_id)
        if len(log.settled_ids) > SETTLED_IDS_KEPT:
            del log.settled_ids[: len(log.settled_ids) - SETTLED_IDS_KEPT]


def _ledger(log: PatientLog, records: list[Record]) -> list[Record]:
    """Drop alerts already emitted; remember the new ones; forget retracted ones."""
    if not records:
        return records
    out: list[Record] = []
    for r in records:
        if isinstance(r, Alert):
            if r.id in log.emitted_alerts:
                continue
            log.emitted_alerts.append(r.id)
            if len(log.emitted_alerts) > EMITTED_ALERTS_KEPT:
                del log.emitted_alerts[0]
        elif isinstance(r, Retraction) and r.retracts in log.emitted_alerts:
            log.emitted_alerts.remove(r.retracts)
        out.append(r)
    return out


def _flat(per_event: list[list[Record]]) -> list[Record]:
    return [r for records in per_event for r in records]


def _refold_from(log: PatientLog, start: int, cfg: Thresholds) -> None:
    """Fold pending[start:] again from the state at `start` (a checkpoint or `settled`)."""
    base = log.checkpoints[start] if start else log.settled
    state = base.clone()
    for k in [k for k in log.checkpoints if k > start]:
        del log.checkpoints[k]
    records: list[list[Record]] = []
    for j in range(start, len(log.pending)):
        ev = log.pending[j]
        records.append(apply(state, ev, cfg, late=ev.event_id in log.late_ids))
        if (j + 1) % CHECKPOINT_EVERY == 0:
            log.checkpoints[j + 1] = state.clone()
    log.pending_records[start:] = records
    log.head = state


def _diff(old: list[Record], new: list[Record], cause: str,
          why: str = "arrived late and re-ordered the window") -> list[Record]:
    old_keys = {record_key(r) for r in old}
    new_keys = {record_key(r) for r in new}
    out: list[Record] = [r.model_copy(update={"correction": True}) for r in new if record_key(r) not in old_keys]
    for r in old:
        k = record_key(r)
        if k not in new_keys and not isinstance(r, Retraction):
            out.append(
                Retraction(
                    retracts=k,
                    patient_id=r.patient_id,
                    time=r.time,
                    day=r.day,
                    evidence=(f"event {cause} {why}; this record no longer holds",),
                    correction=True,
                )
            )
    return out


def _append(log: PatientLog, ev: ClinicalEvent, key: tuple[float, str], records: list[Record]) -> None:
    log.pending.append(ev)
    log.pending_keys.append(key)
    log.pending_records.append(records)
    log.pending_ids.add(ev.event_id)
    if len(log.pending) % CHECKPOINT_EVERY == 0:
        log.checkpoints[len(log.pending)] = log.head.clone()


def _insert_and_refold(log: PatientLog, i: int, ev: ClinicalEvent, cfg: Thresholds) -> list[Record]:
    """Insert `ev` at pending position `i` and fold again from the nearest checkpoint."""
    start = max((k for k in log.checkpoints if k <= i), default=0)
    old_records = _flat(log.pending_records[start:])
    log.pending.insert(i, ev)
    log.pending_keys.insert(i, _key(ev))
    log.pending_records.insert(i, [])
    _refold_from(log, start, cfg)
    return _diff(old_records, _flat(log.pending_records[start:]), ev.event_id)


def _insert_lab_commuting(log: PatientLog, i: int, ev: ClinicalEvent, cfg: Thresholds) -> list[Record] | None:
    """Insert a late lab, folding again only up to the last non-vitals event after it.

    A lab writes only the lab part of the state (alerts.fold.copy_lab_part) and no event
    writes the rest from lab state. Vitals read no lab state except through the IEC-HS
    re-check, which runs only while the IEC-HS level is above 0. So if the window is
    folded again up to position `m` (just after the last non-vitals event), and the level
    there is 0 both without and with the new lab, the trailing vitals give the same
    records and leave the lab part alone: the new state is the old one with the lab part
    taken at `m`. Returns the records to emit, or None when this does not apply.
    """
    if not isinstance(ev, LabResult):
        return None
    pending = log.pending
    m = i
    for j in range(len(pending) - 1, i - 1, -1):
        if type(pending[j]) is not VitalSigns:
            m = j + 1
            break
    start = max((k for k in log.checkpoints if k <= i), default=0)
    base = log.checkpoints[start] if start else log.settled
    late = log.late_ids

    # The level at m was 0 without the new lab exactly when it is 0 now and no IEC-HS change
    # was recorded after m: after m only the re-check can change it, and a change is recorded.
    if log.head.iec_hs_level or any(
        type(r) is IecHsChange for records in log.pending_records[m:] for r in records
    ):
        return None
    new = base.clone()
    records = [apply(new, pending[j], cfg, late=pending[j].event_id in late) for j in range(start, i)]
    records.append(apply(new, ev, cfg))
    records += [apply(new, pending[j], cfg, late=pending[j].event_id in late) for j in range(i, m)]
    if new.iec_hs_level:
        return None

    old_records = _flat(log.pending_records[start:])
    pending.insert(i, ev)
    log.pending_keys.insert(i, _key(ev))
    log.pending_records[start:m] = records
    copy_lab_part(new, log.head)
    checkpoints: dict[int, PatientState] = {}
    for k, cp in log.checkpoints.items():
        if k <= i:
            checkpoints[k] = cp
        elif k >= m:  # in the trailing vitals: only the lab part changes
            copy_lab_part(new, cp)
            checkpoints[k + 1] = cp
        # a checkpoint between i and m is dropped: checkpoints only save work
    log.checkpoints = checkpoints
    return _diff(old_records, _flat(log.pending_records[start:]), ev.event_id)


def _copy(log: PatientLog) -> PatientLog:
    return PatientLog(
        settled=log.settled.clone(),
        head=log.head.clone(),
        pending=list(log.pending),
        pending_keys=list(log.pending_keys),
        pending_ids=set(log.pending_ids),
        pending_records=[list(r) for r in log.pending_records],
        checkpoints={k: v.clone() for k, v in log.checkpoints.items()},
        max_ts=log.max_ts,
        settled_ids=list(log.settled_ids),
        emitted_alerts=list(log.emitted_alerts),
        late_ids=set(log.late_ids),
        pending_logical=dict(log.pending_logical),
        retired=dict(log.retired),
    )


def _assert_same(fast: PatientLog, full: PatientLog, fast_records: list[Record], full_records: list[Record]) -> None:
    a, b = json.loads(state_to_json(fast.head)), json.loads(state_to_json(full.head))
    if a != b:  # compared as values: key order of the state's dicts carries no meaning
        fields = {k: (a[k], b[k]) for k in a if a[k] != b[k]}
        raise AssertionError(f"lab fast path: head differs from the full re-fold: {fields}")
    if [record_key(r) for r in fast_records] != [record_key(r) for r in full_records]:
        raise AssertionError("lab fast path: records differ from the full re-fold")
    if [[record_key(r) for r in rs] for rs in fast.pending_records] != [
        [record_key(r) for r in rs] for rs in full.pending_records
    ]:
        raise AssertionError("lab fast path: per-event records differ from the full re-fold")
    for k, cp in fast.checkpoints.items():
        if k in full.checkpoints and json.loads(state_to_json(cp)) != json.loads(state_to_json(full.checkpoints[k])):
            raise AssertionError(f"lab fast path: checkpoint {k} differs from the full re-fold")


def _settle(log: PatientLog, horizon: float) -> None:
    """Adopt the newest checkpoint before which every event is older than the window."""
    keys = log.pending_keys
    if len(keys) < CHECKPOINT_EVERY or keys[CHECKPOINT_EVERY - 1][0] > horizon:
        return  # not even the first checkpoint is behind the horizon yet
    n = 0
    for k in log.pending_keys:
        if k[0] > horizon:
            break
        n += 1
    usable = [k for k in log.checkpoints if k <= n]
    if not usable:
        return
    c = max(usable)
    log.settled = log.checkpoints.pop(c)
    for old in log.pending[:c]:
        log.pending_ids.discard(old.event_id)
        log.late_ids.discard(old.event_id)
        _remember(log, old)
        if old.logical_id is not None:
            _untrack(log, old.logical_id, old.version, voided=False)
    del log.pending[:c]
    del log.pending_keys[:c]
    del log.pending_records[:c]
    log.checkpoints = {k - c: v for k, v in log.checkpoints.items() if k > c}


def _track(log: PatientLog, ev: ClinicalEvent) -> None:
    if ev.logical_id is not None:
        _, n = log.pending_logical.get(ev.logical_id, (None, 0))
        log.pending_logical[ev.logical_id] = (ev.version, n + 1)


def _untrack(log: PatientLog, logical_id: str, version: int | None, voided: bool) -> None:
    """One pending event of `logical_id` left the window (settled) or was removed."""
    entry = log.pending_logical.get(logical_id)
    if entry is not None and entry[1] > 1 and not voided:
        log.pending_logical[logical_id] = (entry[0], entry[1] - 1)
        return
    log.pending_logical.pop(logical_id, None)
    _retire(log, logical_id, version, voided)


def _retire(log: PatientLog, logical_id: str, version: int | None, voided: bool) -> None:
    log.retired.pop(logical_id, None)  # re-inserted last: the oldest entry is forgotten first
    log.retired[logical_id] = (version, voided)
    if len(log.retired) > RETIRED_KEPT:
        del log.retired[next(iter(log.retired))]


def _older(version: int | None, than: int | None) -> bool:
    """Versions order only when both are given; an unversioned arrival counts as the newer one."""
    return version is not None and than is not None and version < than


def _notice(log: PatientLog, ev: ClinicalEvent, logical_id: str, text: str) -> Notice:
    return Notice(refers_to=logical_id, patient_id=log.head.patient_id, time=iso(ev.ts),
                  day=day_of(log.head, ev.ts), evidence=(text,))


def _remove_logical(log: PatientLog, logical_id: str, new: ClinicalEvent | None, cfg: Thresholds,
                    why: str) -> list[Record]:
    """Take the pending events of `logical_id` out, insert `new` (if any) and fold again."""
    idx = [i for i, e in enumerate(log.pending) if e.logical_id == logical_id]
    first = idx[0] if idx else len(log.pending)
    key: tuple[float, str] | None = None
    if new is not None:
        key = _key(new)
        if log.max_ts is not None and new.ts <= log.max_ts - cfg.lateness_minutes * 60:
            # Beyond the window: at its arrival position, like any late event.
            last = log.pending_keys[-1] if log.pending_keys else (log.max_ts, "")
            key = (last[0], f"{last[1]}\x00late:{new.event_id}")
            log.late_ids.add(new.event_id)
        first = min(first, bisect.bisect(log.pending_keys, key))
    start = max((k for k in log.checkpoints if k <= first), default=0)
    old_records = _flat(log.pending_records[start:])
    for i in reversed(idx):
        gone = log.pending.pop(i)
        del log.pending_keys[i]
        del log.pending_records[i]
        log.pending_ids.discard(gone.event_id)
        log.late_ids.discard(gone.event_id)
    log.pending_logical.pop(logical_id, None)
    if new is not None and key is not None:
        i = bisect.bisect(log.pending_keys, key)
        log.pending.insert(i, new)
        log.pending_keys.insert(i, key)
        log.pending_records.insert(i, [])
        log.pending_ids.add(new.event_id)
        _track(log, new)
    _refold_from(log, start, cfg)
    return _diff(old_records, _flat(log.pending_records[start:]), logical_id, why)


def _retract(log: PatientLog, ev: Retract, cfg: Thresholds) -> StepResult:
    lid, v = ev.retracts, ev.version
    pending = log.pending_logical.get(lid)
    retired = log.retired.get(lid)
    if pending is not None:
        if _older(v, pending[0]):
            return StepResult("superseded", [], f"retraction of {lid} is older than the version applied")
        records = _remove_logical(log, lid, None, cfg, "was entered in error (retracted)")
        text = None
        if retired is not None and not retired[1]:
            text = (f"{lid} retracted (entered in error): an earlier version left the lateness window; its effect "
                    "on the settled state cannot be undone; review")
            records.append(_notice(log, ev, lid, text))
        _retire(log, lid, v, voided=True)
        return StepResult("retracted", _ledger(log, records), text)
    if retired is not None:
        rv, voided = retired
        if voided and not _older(rv, v):
            return StepResult("duplicate", [], f"{lid} already retracted")
        if _older(v, rv):
            return StepResult("superseded", [], f"retraction of {lid} is older than the version applied")
        _retire(log, lid, v, voided=True)
        if voided:
            return StepResult("retracted", [])
        text = (f"{lid} retracted (entered in error) after it left the {cfg.lateness_minutes:g} min lateness "
                "window: its effect on the settled state cannot be undone; later deliveries of it are ignored; review")
        return StepResult("retracted", _ledger(log, [_notice(log, ev, lid, text)]), text)
    _retire(log, lid, v, voided=True)
    text = (f"{lid} retracted (entered in error) but not in the lateness window nor the recent history: if it "
            "was applied earlier, its effect remains in the settled state; later deliveries of it are ignored")
    return StepResult("retracted", _ledger(log, [_notice(log, ev, lid, text)]), text)


def _versioned(log: PatientLog, ev: ClinicalEvent, cfg: Thresholds) -> StepResult | None:
    """Handle a new version of a known record; None: apply `ev` the ordinary way."""
    lid, v = ev.logical_id, ev.version
    assert lid is not None
    pending = log.pending_logical.get(lid)
    if pending is not None:
        if pending[0] == v:
            return None  # another event of the same version (one record may give several events)
        if _older(v, pending[0]):
            return StepResult("superseded", [], f"{lid} version {v} is older than version {pending[0]} applied")
        records = _remove_logical(log, lid, ev, cfg, f"was corrected by version {v}")
        if log.max_ts is None or ev.ts > log.max_ts:
            log.max_ts = ev.ts
            _settle(log, ev.ts - cfg.lateness_minutes * 60)
        return StepResult("corrected", _ledger(log, records))
    retired = log.retired.get(lid)
    if retired is None:
        return None
    rv, voided = retired
    if rv == v or (voided and not _older(rv, v)):
        if voided:
            return StepResult("superseded", [], f"{lid} was retracted (entered in error)")
        return None  # a settled record delivered again: the ordinary duplicate checks apply
    if _older(v, rv):
        return StepResult("superseded", [], f"{lid} version {v} is older than version {rv} applied")
    if voided:
        return None  # a newer version stands again after a retraction
    result = _step(log, ev, cfg)
    text = (f"{lid} corrected by version {v} after the earlier version left the {cfg.lateness_minutes:g} min "
            "lateness window: the earlier version stays in the settled state and the correction is applied on "
            "top of it; review")
    return StepResult("corrected", [*result.records, *_ledger(log, [_notice(log, ev, lid, text)])], text)


def step(log: PatientLog, ev: ClinicalEvent, cfg: Thresholds) -> StepResult:
    """Apply one event to the patient's log (in place) and return what it emits."""
    if ev.patient_id != log.head.patient_id:
        raise ValueError(f"event {ev.event_id} is for patient {ev.patient_id}, not {log.head.patient_id}")
    if ev.event_id in log.pending_ids:
        return StepResult("duplicate", [], f"event_id {ev.event_id} already applied")
    if isinstance(ev, Retract):
        return _retract(log, ev, cfg)
    if ev.logical_id is not None:
        result = _versioned(log, ev, cfg)
        if result is not None:
            return result
    return _step(log, ev, cfg)


def _step(log: PatientLog, ev: ClinicalEvent, cfg: Thresholds) -> StepResult:
    window = cfg.lateness_minutes * 60
    ts = ev.ts
    if log.max_ts is not None and ts <= log.max_ts - window:
        if ev.event_id in log.settled_ids:
            return StepResult("duplicate", [], f"event_id {ev.event_id} already applied")
        # Too old to re-order: folded at its arrival position, i.e. keyed just after the
        # newest pending event, so that the log stays one ordered sequence.
        last = log.pending_keys[-1] if log.pending_keys else (log.max_ts, "")
        records = apply(log.head, ev, cfg, late=True)
        _append(log, ev, (last[0], f"{last[1]}\x00late:{ev.event_id}"), records)
        log.late_ids.add(ev.event_id)
        _track(log, ev)
        reason = f"event time is more than {cfg.lateness_minutes:g} min older than the patient's newest event"
        return StepResult("late", _ledger(log, records), reason)

    key = _key(ev)
    pending = log.pending
    if not pending or key > log.pending_keys[-1]:
        records = apply(log.head, ev, cfg)
        _append(log, ev, key, records)
    else:
        i = bisect.bisect(log.pending_keys, key)
        reference = _copy(log) if VERIFY_FAST_PATH else None
        fast = _insert_lab_commuting(log, i, ev, cfg)
        if fast is None:
            records = _insert_and_refold(log, i, ev, cfg)
        else:
            records = fast
            if reference is not None:
                expected = _insert_and_refold(reference, i, ev, cfg)
                _assert_same(log, reference, records, expected)
        log.pending_ids.add(ev.event_id)
    _track(log, ev)

    if log.max_ts is None or ts > log.max_ts:
        log.max_ts = ts
        _settle(log, ts - window)
    return StepResult("applied", _ledger(log, records)) if records else _APPLIED_NOTHING


_VITAL_FIELDS = ("temperature", "heart_rate", "sbp", "dbp", "map", "spo2", "resp_rate")


def _compact(ev: ClinicalEvent) -> Any:
    """Vitals (most of the window) as a short row; anything a row cannot hold stays full JSON."""
    if (
        isinstance(ev, VitalSigns)
        and ev.logical_id is None
        and ev.version is None
        and ev.recorded_time is None
        and ev.provenance.quote is None
        and ev.provenance.assumption is None
        and ev.time.utcoffset() == timedelta(0)
    ):
        values = [getattr(ev, f).value if getattr(ev, f) is not None else None for f in _VITAL_FIELDS]
        return [ev.event_id, ev.ts, ev.provenance.source, *values]
    return ev.model_dump(mode="json", exclude_none=True)


def _expand(row: Any, patient_id: str) -> ClinicalEvent:
    if isinstance(row, dict):
        return parse_event(row)
    event_id, ts, source, *values = row
    raw: dict[str, Any] = {
        "kind": "vitals",
        "event_id": event_id,
        "patient_id": patient_id,
        "time": datetime.fromtimestamp(ts, UTC).isoformat(),
        "provenance": {"source": source},
    }
    for name, value in zip(_VITAL_FIELDS, values, strict=True):
        if value is not None:
            raw[name] = {"value": value, "unit": VITAL_UNITS[name][0]}
    return parse_event(raw)


def log_to_json(log: PatientLog) -> bytes:
    """What a state store keeps for a patient: the settled state and the pending window."""
    pending = json.dumps([_compact(e) for e in log.pending], separators=(",", ":"))
    max_ts = "null" if log.max_ts is None else repr(log.max_ts)
    ids = json.dumps(log.settled_ids, separators=(",", ":"))
    alerts = json.dumps(log.emitted_alerts, separators=(",", ":"))
    late = json.dumps(
        [[n, k[0], k[1]] for n, (e, k) in enumerate(zip(log.pending, log.pending_keys, strict=True))
         if e.event_id in log.late_ids],
        separators=(",", ":"),
    )
    retired = json.dumps([[k, v, voided] for k, (v, voided) in log.retired.items()], separators=(",", ":"))
    tail = (f',"max_ts":{max_ts},"settled_ids":{ids},"emitted_alerts":{alerts},"late":{late},'
            f'"retired":{retired},"pending":{pending}}}')
    return b'{"settled":' + state_to_json(log.settled) + tail.encode()


def log_from_json(data: bytes | str, cfg: Thresholds) -> PatientLog:
    obj: dict[str, Any] = json.loads(data)
    settled = state_from_json(json.dumps(obj["settled"]))
    pending = [_expand(row, settled.patient_id) for row in obj["pending"]]
    keys = [_key(e) for e in pending]
    for n, ts, key in obj["late"]:
        keys[n] = (ts, key)
    log = PatientLog(
        settled=settled,
        head=settled,
        pending=pending,
        pending_records=[[] for _ in pending],
        pending_keys=keys,
        pending_ids={e.event_id for e in pending},
        max_ts=obj["max_ts"],
        settled_ids=list(obj["settled_ids"]),
        emitted_alerts=list(obj["emitted_alerts"]),
        late_ids={pending[n].event_id for n, _, _ in obj["late"]},
        retired={k: (v, voided) for k, v, voided in obj.get("retired", [])},
    )
    for e in pending:
        _track(log, e)
    _refold_from(log, 0, cfg)
    return log
