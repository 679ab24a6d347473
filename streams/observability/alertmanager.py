"""Alert sink: each crswatch alert becomes an Alertmanager alert (v2 API, POST /api/v2/alerts).

Identity. An Alertmanager alert is identified by its label set. A crswatch alert record
`<patient>:<kind>:<activation>:<level>` maps to the labels
    alertname=<kind>, severity, level, episode=<activation>, patient_key, category=clinical
    [, unit, bed]
so every level reached in an activation (CRS grade 3, then grade 4 of the same episode)
is its own Alertmanager alert. They all stay firing until the activation resolves:
crswatch alerts each level once per activation and never again, so closing grade 4 at a
de-escalation would leave nothing firing if the patient went back to grade 4. The
de-escalation itself is an info alert. The routing config inhibits the lower levels of
the same kind, episode and patient while a higher severity fires.

Resolution. A `status: resolved` record (`<patient>:<kind>:<activation>:resolved`) ends
every firing alert of that patient, kind and activation: each is posted once more with
endsAt = now. A Retraction of an alert id ends that alert the same way. Resolved records
are not posted as alerts of their own.

Re-sending. Firing alerts are posted again every `resend_seconds` with endsAt = now +
4 x resend_seconds (as Prometheus does), so Alertmanager keeps them while the sink is
alive and resolves them by itself if the sink dies; a lost resolution is therefore late
by at most that long.

Patient key. `patient_key` is HMAC-SHA256(secret, patient_id), 16 hex digits. It is
pseudonymous, not anonymous: whoever holds the secret and a list of patient ids can
recompute it (that is how the ward looks a patient up). Labels carry nothing else about
the patient. Annotations (summary, evidence, event time, day, `ref` = the alert id with
the patient id replaced by the key) are the clinical content; the patient id is replaced
by the key there too, but evidence quotes event ids from the source feeds, so
Alertmanager and its receivers belong inside the clinical network.

Threading. `submit(records)` never blocks (an asyncio worker calls it): it puts the
records on a bounded queue, or drops and counts them when the queue is full. One daemon
thread turns them into posts, re-sends and retries failed posts with exponential
backoff (stdlib urllib: one small JSON POST needs no HTTP library). A 4xx answer is not
retried (the payload would be refused again); the alerts are counted as dropped.

    cfg = sink_config_from_env(os.environ)   # None: no Alertmanager configured, no sink
    sink = AlertmanagerSink(cfg, metrics)
    sink.start()
    sink.submit(result.records)          # any records; only alerts and retractions matter
    sink.close()                         # at shutdown
"""

from __future__ import annotations

import hashlib
import hmac
import json
import queue
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from models.records import Alert, Record, Retraction
from streams.observability.metrics import Metrics

API_PATH = "/api/v2/alerts"
ANNOTATION_MAX_CHARS = 8000


@dataclass(frozen=True, slots=True)
class SinkConfig:
    url: str  # Alertmanager base URL, e.g. http://127.0.0.1:9093
    secret: bytes  # HMAC key of patient_key; keep it out of the repository
    unit: str | None = None  # ward or unit label on every alert
    bed_of: Callable[[str], str | None] | None = None  # patient_id -> bed label (a bounded set)
    resend_seconds: float = 60.0
    queue_size: int = 10_000
    timeout_seconds: float = 5.0
    backoff_seconds: float = 0.5
    max_backoff_seconds: float = 30.0
    generator_url: str = ""

    def __post_init__(self) -> None:
        if not self.secret:
            raise ValueError("SinkConfig.secret is empty: patient keys would be a plain hash of the id")


ENV_URL = "CRSWATCH_ALERTMANAGER_URL"
ENV_SECRET = "CRSWATCH_PATIENT_KEY_SECRET"
ENV_SECRET_FILE = "CRSWATCH_PATIENT_KEY_SECRET_FILE"
ENV_UNIT = "CRSWATCH_UNIT"


def sink_config_from_env(env: Mapping[str, str]) -> SinkConfig | None:
    """The sink's config from CRSWATCH_ALERTMANAGER_URL, CRSWATCH_PATIENT_KEY_SECRET (or
    CRSWATCH_PATIENT_KEY_SECRET_FILE, e.g. a Docker secret) and CRSWATCH_UNIT; None without a URL."""
    url = env.get(ENV_URL)
    if not url:
        return None
    secret = env.get(ENV_SECRET, "").encode("utf-8")
    if not secret and env.get(ENV_SECRET_FILE):
        with open(env[ENV_SECRET_FILE], "rb") as fh:
            secret = fh.read().strip()
    if not secret:
        raise ValueError(f"{ENV_URL} is set but neither {ENV_SECRET} nor {ENV_SECRET_FILE} gives the "
                         "patient-key secret")
    return SinkConfig(url=url, secret=secret, unit=env.get(ENV_UNIT) or None)


def patient_key(patient_id: str, secret: bytes) -> str:
    return hmac.new(secret, patient_id.encode("utf-8"), hashlib.sha256).hexdigest()[:16]


def resolve_patient_key(key: str, candidates: Iterable[str], secret: bytes) -> list[str]:
    """The patient ids among `candidates` whose key under `secret` is `key` (the key is an HMAC: it
    can only be matched, never inverted). For an authorised user holding the secret."""
    key = key.strip().lower()
    return sorted({pid for pid in candidates if hmac.compare_digest(patient_key(pid, secret), key)})


def rfc3339(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def split_alert_id(alert_id: str, patient_id: str) -> tuple[str, str, str]:
    """(kind, activation, level) of `<patient>:<kind>:<activation>:<level>` (the level may hold ':')."""
    rest = alert_id[len(patient_id) + 1:] if alert_id.startswith(patient_id + ":") else alert_id
    parts = rest.split(":", 2)
    parts += [""] * (3 - len(parts))
    return parts[0], parts[1], parts[2]


@dataclass(slots=True)
class AmAlert:
    labels: dict[str, str]
    annotations: dict[str, str]
    starts_at: float
    ends_at: float | None = None

    def payload(self, now: float, resend_seconds: float) -> dict[str, Any]:
        ends = self.ends_at if self.ends_at is not None else now + 4 * resend_seconds
        return {
            "labels": self.labels,
            "annotations": self.annotations,
            "startsAt": rfc3339(min(self.starts_at, ends)),
            "endsAt": rfc3339(ends),
        }


def _scrub(text: str, patient_id: str, key: str) -> str:
    return text.replace(patient_id, key)[:ANNOTATION_MAX_CHARS]


def to_am_alert(alert: Alert, cfg: SinkConfig, now: float) -> AmAlert:
    """The Alertmanager alert of a firing crswatch alert (pure)."""
    key = patient_key(alert.patient_id, cfg.secret)
    kind, activation, level = split_alert_id(alert.id, alert.patient_id)
    labels = {
        "alertname": kind,
        "severity": alert.severity,
        "level": level,
        "episode": activation,
        "patient_key": key,
        "category": "clinical",
    }
    if cfg.unit:
        labels["unit"] = cfg.unit
    bed = cfg.bed_of(alert.patient_id) if cfg.bed_of is not None else None
    if bed:
        labels["bed"] = bed
    annotations = {
        "summary": _scrub(alert.summary, alert.patient_id, key),
        "evidence": _scrub("\n".join(alert.evidence), alert.patient_id, key),
        "event_time": alert.time,
        "day": "" if alert.day is None else f"{alert.day:+d}",
        "ref": f"{key}:{kind}:{activation}:{level}",
    }
    if alert.late or alert.correction:
        annotations["note"] = "late event" if alert.late else "correction after a late event re-ordered history"
    try:
        starts = datetime.fromisoformat(alert.time.replace("Z", "+00:00")).timestamp()
    except ValueError:
        starts = now
    return AmAlert(labels, annotations, min(starts, now))


def _identity(labels: dict[str, str]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(labels.items()))


AlertKey = tuple[str, str, str, str]  # patient_id, kind, activation, level
RESOLVED_KEPT = 1024


def _key(patient_id: str, alert_id: str) -> AlertKey:
    return (patient_id, *split_alert_id(alert_id, patient_id))


@dataclass(slots=True)
class _State:
    """Sink bookkeeping, touched only by the sink thread."""

    firing: dict[AlertKey, AmAlert] = field(default_factory=dict)
    # resolution key -> the alerts it ended (bounded): a retracted resolution fires them again
    resolved: dict[AlertKey, list[AmAlert]] = field(default_factory=dict)
    # label identity -> the newest version of each alert waiting to be posted
    outbox: dict[tuple[tuple[str, str], ...], AmAlert] = field(default_factory=dict)
    taken: int = 0  # records taken from the queue whose posts are not done yet

    def end(self, am: AmAlert, now: float, note: tuple[str, str]) -> None:
        am.ends_at = now
        am.annotations[note[0]] = note[1]
        self.outbox[_identity(am.labels)] = am

    def apply(self, rec: Alert | Retraction, cfg: SinkConfig, now: float) -> None:
        if isinstance(rec, Retraction):
            key = _key(rec.patient_id, rec.retracts)
            am = self.firing.pop(key, None)
            if am is not None:
                self.end(am, now, ("note", "retracted: a late event re-ordered history; this alert no longer holds"))
            for am in self.resolved.pop(key, []):
                am.ends_at = None
                am.annotations.pop("resolution", None)
                self.firing[(*key[:3], am.labels["level"])] = am
                self.outbox[_identity(am.labels)] = am
            return
        key = _key(rec.patient_id, rec.id)
        if rec.status == "resolved":
            ended = [k for k in self.firing if k[:3] == key[:3]]
            summary = _scrub(rec.summary, rec.patient_id, patient_key(rec.patient_id, cfg.secret))
            self.resolved[key] = [self.firing.pop(k) for k in ended]
            for am in self.resolved[key]:
                self.end(am, now, ("resolution", summary))
            if len(self.resolved) > RESOLVED_KEPT:
                del self.resolved[next(iter(self.resolved))]
            return
        am = to_am_alert(rec, cfg, now)
        self.firing[key] = am
        self.outbox[_identity(am.labels)] = am


class AlertmanagerSink:
    def __init__(self, config: SinkConfig, metrics: Metrics | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self.metrics = metrics
        self.clock = clock
        self._queue: queue.Queue[Record | None] = queue.Queue(maxsize=config.queue_size)
        self._state = _State()
        self._thread: threading.Thread | None = None
        self._pending = 0  # submitted records not yet posted (or given up)
        self._done = threading.Condition()
        self._endpoint = config.url.rstrip("/") + API_PATH

    # ------------------------------------------------------------------ caller side (any thread)

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="crswatch-alertmanager-sink", daemon=True)
            self._thread.start()

    def submit(self, records: Iterable[Record]) -> int:
        """Queue the alerts and retractions among `records`; never blocks. Returns how many were dropped."""
        queued = dropped = 0
        for r in records:
            if not isinstance(r, (Alert, Retraction)):
                continue
            with self._done:
                try:
                    self._queue.put_nowait(r)
                    self._pending += 1
                    queued += 1
                except queue.Full:
                    dropped += 1
        if dropped and self.metrics is not None:
            self.metrics.alertmanager_dropped(dropped)
        return dropped

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every record submitted so far is posted (or given up). For tests and shutdown."""
        with self._done:
            return self._done.wait_for(lambda: self._pending == 0, timeout)

    def close(self, timeout: float = 10.0) -> None:
        if self._thread is None:
            return
        self.flush(timeout)
        self._queue.put(None)
        self._thread.join(timeout)
        self._thread = None

    @property
    def firing(self) -> list[AmAlert]:
        return list(self._state.firing.values())

    # ------------------------------------------------------------------ sink thread

    def _run(self) -> None:
        cfg, st = self.config, self._state
        next_resend = self.clock() + cfg.resend_seconds
        next_try = 0.0
        backoff = cfg.backoff_seconds
        stop = False
        while not stop:
            now = self.clock()
            wake = min(next_resend, max(next_try, now)) if st.outbox else next_resend
            items: list[Record] = []
            try:
                item = self._queue.get(timeout=max(0.0, wake - now))
                while item is not None:  # take everything already queued: one POST for a burst
                    items.append(item)
                    item = self._queue.get_nowait()
                stop = True
            except queue.Empty:
                pass
            now = self.clock()
            for rec in items:
                if isinstance(rec, (Alert, Retraction)):
                    st.apply(rec, cfg, now)
            st.taken += len(items)
            if now >= next_resend:
                for am in st.firing.values():
                    st.outbox.setdefault(_identity(am.labels), am)
                next_resend = now + cfg.resend_seconds
            if st.outbox and (now >= next_try or stop):
                if self._post_outbox(now):
                    backoff = cfg.backoff_seconds
                else:
                    next_try = now + backoff
                    backoff = min(backoff * 2, cfg.max_backoff_seconds)
            if self.metrics is not None:
                self.metrics.alertmanager_firing(len(st.firing))
            if not st.outbox and st.taken:
                with self._done:
                    self._pending -= st.taken
                    st.taken = 0
                    self._done.notify_all()

    def _post_outbox(self, now: float) -> bool:
        """POST the outbox; True when it is done with (accepted, or refused for good)."""
        batch = list(self._state.outbox.values())
        body = json.dumps([a.payload(now, self.config.resend_seconds) for a in batch]).encode("utf-8")
        req = urllib.request.Request(self._endpoint, data=body, method="POST",
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=self.config.timeout_seconds) as resp:
                resp.read()
        except urllib.error.HTTPError as exc:
            if self.metrics is not None:
                self.metrics.alertmanager_failed()
            if not 400 <= exc.code < 500:
                return False
            self._state.outbox.clear()
            if self.metrics is not None:
                self.metrics.alertmanager_dropped(len(batch))
            return True
        except OSError:  # URLError, refused connection, timeout
            if self.metrics is not None:
                self.metrics.alertmanager_failed()
            return False
        self._state.outbox.clear()
        if self.metrics is not None:
            self.metrics.alertmanager_sent(len(batch))
        return True


__all__ = ["AlertmanagerSink", "AmAlert", "SinkConfig", "patient_key", "sink_config_from_env", "split_alert_id",
           "to_am_alert"]
