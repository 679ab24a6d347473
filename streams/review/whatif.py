"""What changes when the thresholds change: alerts, grade-days and lead time of two replays (pure, no I/O).

Alerts of the two versions are compared per patient and per (kind, level, status): "CRS escalated to grade 3"
is compared with "CRS escalated to grade 3", never with grade 2. Inside a group the two time-ordered lists
are aligned by least total cost (a sequence alignment): pairing two alerts costs the time between them,
leaving one unpaired costs half of `max_move_hours`; so a pair at most `max_move_hours` apart is the same alert
moved in time (a tie, 0 s apart, is unchanged), anything else is one alert removed and another added. Alert
ids are not compared: an earlier extra activation renumbers every later id of that kind.

Grade-days: for CRS, ICANS and IEC-HS, the highest level held on each calendar Day (alerts.fold.day_of) from
the patient's first to last event; a grade-day changed when that highest level differs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from models.records import CrsGradeChange, IcansGradeChange, IecHsChange, Record
from streams.review.leadtime import AlertRef, LeadRow
from streams.review.series import effective, midnight, record_ts

DEFAULT_MAX_MOVE_HOURS = 48.0
SCALES = ("CRS", "ICANS", "IEC-HS")


@dataclass(frozen=True, slots=True)
class Moved:
    before: AlertRef
    after: AlertRef

    @property
    def delta_s(self) -> float:
        return self.after.ts - self.before.ts


@dataclass(frozen=True, slots=True)
class AlertDiff:
    added: tuple[AlertRef, ...]
    removed: tuple[AlertRef, ...]
    moved: tuple[Moved, ...]
    unchanged: int


def align(a: Sequence[AlertRef], b: Sequence[AlertRef], max_move_s: float) -> tuple[list[tuple[int, int]],
                                                                                  list[int], list[int]]:
    """Least-cost alignment of two time-ordered lists: (pairs, unpaired of a, unpaired of b)."""
    gap = max_move_s / 2
    n, m = len(a), len(b)
    cost = [[0.0] * (m + 1) for _ in range(n + 1)]
    for i in range(1, n + 1):
        cost[i][0] = i * gap
    for j in range(1, m + 1):
        cost[0][j] = j * gap
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            d = abs(a[i - 1].ts - b[j - 1].ts)
            pair = cost[i - 1][j - 1] + d if d <= max_move_s else float("inf")
            cost[i][j] = min(pair, cost[i - 1][j] + gap, cost[i][j - 1] + gap)
    pairs: list[tuple[int, int]] = []
    only_a: list[int] = []
    only_b: list[int] = []
    i, j = n, m
    while i > 0 or j > 0:
        if i > 0 and j > 0:
            d = abs(a[i - 1].ts - b[j - 1].ts)
            if d <= max_move_s and cost[i][j] == cost[i - 1][j - 1] + d:
                pairs.append((i - 1, j - 1))
                i, j = i - 1, j - 1
                continue
        if i > 0 and cost[i][j] == cost[i - 1][j] + gap:
            only_a.append(i - 1)
            i -= 1
        else:
            only_b.append(j - 1)
            j -= 1
    return pairs[::-1], only_a[::-1], only_b[::-1]


def diff_alerts(current: Sequence[AlertRef], changed: Sequence[AlertRef],
                max_move_hours: float = DEFAULT_MAX_MOVE_HOURS) -> AlertDiff:
    groups: dict[tuple[str, str, str], tuple[list[AlertRef], list[AlertRef]]] = {}
    for side, alerts in enumerate((current, changed)):
        for al in alerts:
            groups.setdefault((al.kind, al.level, al.status), ([], []))[side].append(al)
    added: list[AlertRef] = []
    removed: list[AlertRef] = []
    moved: list[Moved] = []
    unchanged = 0
    for key in sorted(groups):
        a, b = (sorted(x, key=lambda r: (r.ts, r.id)) for x in groups[key])
        pairs, only_a, only_b = align(a, b, max_move_hours * 3600)
        for i, j in pairs:
            if a[i].ts == b[j].ts:
                unchanged += 1
            else:
                moved.append(Moved(a[i], b[j]))
        removed += [a[i] for i in only_a]
        added += [b[j] for j in only_b]

    def by_time(x: AlertRef) -> tuple[float, str]:
        return (x.ts, x.id)

    return AlertDiff(tuple(sorted(added, key=by_time)), tuple(sorted(removed, key=by_time)),
                     tuple(sorted(moved, key=lambda mv: by_time(mv.before))), unchanged)


def grade_days(records: Sequence[Record], day0_ts: float | None, first_ts: float, last_ts: float
               ) -> dict[str, dict[int, int]]:
    """Scale -> Day -> highest level held that day, for every day from the first to the last event."""
    origin = midnight(day0_ts if day0_ts is not None else first_ts)

    def day(ts: float) -> int:
        return int((ts - origin) // 86400)

    first_day, last_day = day(first_ts), day(last_ts)
    out: dict[str, dict[int, int]] = {}
    changes: dict[str, list[tuple[float, int]]] = {s: [] for s in SCALES}
    for r in effective(records):
        if isinstance(r, CrsGradeChange):
            changes["CRS"].append((record_ts(r), r.grade))
        elif isinstance(r, IcansGradeChange):
            changes["ICANS"].append((record_ts(r), r.grade))
        elif isinstance(r, IecHsChange):
            changes["IEC-HS"].append((record_ts(r), r.level))
    for scale, seq in changes.items():
        seq.sort(key=lambda c: c[0])
        days = dict.fromkeys(range(first_day, last_day + 1), 0)
        level = 0
        k = 0
        for d in range(first_day, last_day + 1):
            high = level
            end = origin + (d + 1) * 86400
            while k < len(seq) and seq[k][0] < end:
                level = seq[k][1]
                high = max(high, level)
                k += 1
            days[d] = high
        out[scale] = days
    return out


@dataclass(frozen=True, slots=True)
class GradeDayChange:
    scale: str
    level: int
    days_current: int
    days_changed: int

    @property
    def delta(self) -> int:
        return self.days_changed - self.days_current


def diff_grade_days(a: dict[str, dict[int, int]], b: dict[str, dict[int, int]]
                    ) -> tuple[list[GradeDayChange], list[tuple[str, int, int, int]]]:
    """(per scale and level: days at that level in each version, for levels that differ;
    the days that changed as (scale, day, level current, level changed))."""
    per_level: list[GradeDayChange] = []
    days: list[tuple[str, int, int, int]] = []
    for scale in SCALES:
        da, db = a.get(scale, {}), b.get(scale, {})
        for d in sorted(set(da) | set(db)):
            la, lb = da.get(d, 0), db.get(d, 0)
            if la != lb:
                days.append((scale, d, la, lb))
        levels = sorted(set(da.values()) | set(db.values()))
        for lvl in levels:
            ca = sum(1 for v in da.values() if v == lvl)
            cb = sum(1 for v in db.values() if v == lvl)
            if ca != cb:
                per_level.append(GradeDayChange(scale, lvl, ca, cb))
    return per_level, days


@dataclass(frozen=True, slots=True)
class LeadChange:
    row_current: LeadRow
    row_changed: LeadRow

    @property
    def delta_s(self) -> float | None:
        """How much earlier (positive) the changed thresholds warn; None when either version has no lead."""
        a, b = self.row_current.lead_s, self.row_changed.lead_s
        return None if a is None or b is None else b - a


def diff_leads(current: Sequence[LeadRow], changed: Sequence[LeadRow]) -> list[LeadChange]:
    """Escalations (the same in both versions: they are input) whose lead or alerts differ."""
    by_key = {r.escalation.key: r for r in changed}
    out: list[LeadChange] = []
    for ra in current:
        rb = by_key.get(ra.escalation.key)
        if rb is None:
            continue
        ids = (tuple(x.id for x in ra.before), tuple(x.id for x in ra.concurrent), tuple(x.id for x in ra.only_after))
        idb = (tuple(x.id for x in rb.before), tuple(x.id for x in rb.concurrent), tuple(x.id for x in rb.only_after))
        if ra.lead_s != rb.lead_s or ids != idb:
            out.append(LeadChange(ra, rb))
    return out


@dataclass(slots=True)
class PatientDiff:
    patient_id: str
    alerts: AlertDiff
    grade_levels: list[GradeDayChange]
    grade_days_changed: list[tuple[str, int, int, int]]
    leads: list[LeadChange]
    alerts_current: int = 0
    alerts_changed: int = 0

    @property
    def changed(self) -> bool:
        return bool(self.alerts.added or self.alerts.removed or self.alerts.moved or self.grade_days_changed
                    or self.leads)


@dataclass(slots=True)
class CohortTotals:
    patients: int = 0
    patients_changed: int = 0
    alerts_current: int = 0
    alerts_changed: int = 0
    added: int = 0
    removed: int = 0
    moved: int = 0
    moved_earlier: int = 0
    moved_later: int = 0
    grade_days: dict[str, dict[int, tuple[int, int]]] = field(default_factory=dict)  # scale -> level -> (a, b)
    escalations: int = 0
    preceded_current: int = 0
    preceded_changed: int = 0
    lead_changed: int = 0  # escalations whose lead (or whether any alert preceded them) changed
    related_changed: int = 0  # escalations whose related alerts changed, lead or not


def patient_diff(patient_id: str, alerts_a: Sequence[AlertRef], alerts_b: Sequence[AlertRef],
                 days_a: dict[str, dict[int, int]], days_b: dict[str, dict[int, int]],
                 leads_a: Sequence[LeadRow], leads_b: Sequence[LeadRow],
                 max_move_hours: float = DEFAULT_MAX_MOVE_HOURS) -> PatientDiff:
    levels, days = diff_grade_days(days_a, days_b)
    return PatientDiff(patient_id, diff_alerts(alerts_a, alerts_b, max_move_hours), levels, days,
                       diff_leads(leads_a, leads_b), len(alerts_a), len(alerts_b))


def totals(diffs: Sequence[PatientDiff], all_days_a: Sequence[dict[str, dict[int, int]]],
           all_days_b: Sequence[dict[str, dict[int, int]]], leads_a: Sequence[LeadRow],
           leads_b: Sequence[LeadRow]) -> CohortTotals:
    t = CohortTotals(patients=len(diffs))
    for d in diffs:
        t.patients_changed += d.changed
        t.alerts_current += d.alerts_current
        t.alerts_changed += d.alerts_changed
        t.added += len(d.alerts.added)
        t.removed += len(d.alerts.removed)
        t.moved += len(d.alerts.moved)
        t.moved_earlier += sum(1 for mv in d.alerts.moved if mv.delta_s < 0)
        t.moved_later += sum(1 for mv in d.alerts.moved if mv.delta_s > 0)
        t.related_changed += len(d.leads)
        t.lead_changed += sum(1 for lc in d.leads if lc.row_current.lead_s != lc.row_changed.lead_s)
    for side, all_days in enumerate((all_days_a, all_days_b)):
        for days in all_days:
            for scale, per_day in days.items():
                for lvl in per_day.values():
                    cur = t.grade_days.setdefault(scale, {}).get(lvl, (0, 0))
                    t.grade_days[scale][lvl] = (cur[0] + (side == 0), cur[1] + (side == 1))
    t.escalations = len(leads_a)
    t.preceded_current = sum(r.preceded for r in leads_a)
    t.preceded_changed = sum(r.preceded for r in leads_b)
    return t
