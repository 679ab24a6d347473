"""The `crswatch` command."""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from models.events import ClinicalEvent, parse_event
from models.records import (
    Alert,
    CrsGradeChange,
    IcansGradeChange,
    IecHsChange,
    Notice,
    Record,
    Retraction,
    record_key,
)
from streams.feeds.inputs import Unit, read_lines
from streams.feeds.normalised import Normalised, Rejection
from streams.replay import Replayer, ordered_events
from streams.settings import check_broker, load_thresholds

if TYPE_CHECKING:
    from streams.replay import ReadCounts

PROGRESS_MIN_BYTES = 5_000_000  # show a progress bar (on a terminal) for inputs larger than this
PROGRESS_MIN_EVENTS = 20_000  # ... and for more events than this


def record_json(r: Record) -> str:
    return r.model_dump_json()


def _fmt_day(day: int | None) -> str:
    return "Day ?" if day is None else f"Day {day:+d}"


LEGEND = """\
How to read the timeline (crswatch replay --legend)
  Day +N          days since the CAR-T infusion (Day 0 = the infusion's calendar day); 'Day ?' when the
                  input has no CAR-T administration for the patient, so no day can be counted
  HH:MM           event time (UTC unless the input's offset is kept) of the fact that changed the grade
  CRS grade a -> b (episode n)   ASTCT 2019 CRS grade changed; episodes count CRS courses of the patient
  ICANS grade a -> b             ASTCT 2019 ICANS grade changed (most severe domain)
  IEC-HS level a -> b: label     in-house IEC-HS suspicion level (0 none .. 3 likely); HScore and HLH-2004
                                 partial scores under it
  ALERT [severity] summary (id)  an alert; the id is <patient>:<kind>:<episode>:<level> and is stable
  RETRACTED ...   an earlier record that a late event showed to be wrong; the record it names is above
  NOTICE ...      a correction that could not be applied exactly (older than the lateness window): review
  (late)          folded on arrival, older than the lateness window: earlier records were not re-ordered
  (correction)    re-emitted after a late event re-ordered history; printed after what it corrects
  - ...           evidence: the facts behind the record, with their times and source ids
  [V] [V2]        criterion verified against the published source (V2: secondary source)
  [U]             criterion not verified against the published source (IEC-HS: Hines et al. 2023)
  uncertain       the grade rests on an assumption (e.g. an oxygen device not documented): check the chart
  => now: ...     the patient's current CRS grade, ICANS grade and IEC-HS level after the record
"""


def _describe(r: Record, offset_min: int = 0) -> str:
    when = f"{_fmt_day(r.day)} {_local_hhmm(r.time, offset_min)}"
    if isinstance(r, CrsGradeChange):
        return f"CRS grade {r.previous} -> {r.grade} of {when}"
    if isinstance(r, IcansGradeChange):
        return f"ICANS grade {r.previous} -> {r.grade} of {when}"
    if isinstance(r, IecHsChange):
        return f"IEC-HS level {r.previous} -> {r.level} of {when}"
    if isinstance(r, Alert):
        return f"alert {r.id} of {when}"
    return f"{r.type} of {when}"


def _display_order(recs: list[Record]) -> list[Record]:
    """Records by event time, except that the corrections and retractions a late event emitted (one run
    in emission order) come right after the latest record they retract: a correction's own time is
    earlier than what it corrects when a late event re-ordered history."""
    by_key: dict[str, Record] = {}
    when = [r.time for r in recs]
    i = 0
    while i < len(recs):
        j = i
        while j < len(recs) and (recs[j].correction or isinstance(recs[j], Retraction)):
            j += 1
        if j > i:  # recs[i:j] is one batch of corrections and retractions
            retracted = [by_key[r.retracts].time for r in recs[i:j]
                         if isinstance(r, Retraction) and r.retracts in by_key]
            latest = max([*retracted, *when[i:j]])
            when[i:j] = [latest] * (j - i)
            for r in recs[i:j]:
                by_key.setdefault(record_key(r), r)
            i = j
        else:
            by_key.setdefault(record_key(recs[i]), recs[i])
            i += 1
    order = sorted(range(len(recs)), key=lambda k: when[k])
    return [recs[k] for k in order]


def _local_hhmm(time: str, offset_min: int) -> str:
    """HH:MM of an ISO time, at the given UTC offset (Day numbers are local to the CAR-T dose's offset)."""
    if not offset_min:
        return time[11:16]
    local = datetime.fromisoformat(time.replace("Z", "+00:00")) + timedelta(minutes=offset_min)
    return local.strftime("%H:%M")


def _offset_text(offset_min: int) -> str:
    sign, a = ("+" if offset_min >= 0 else "-"), abs(offset_min)
    return f"UTC{sign}{a // 60:02d}:{a % 60:02d}"


def print_timeline(records: list[Record], out: TextIO, offsets: dict[str, int] | None = None) -> None:
    """The records per patient by Day. `offsets` (patient -> minutes) gives the CAR-T dose's UTC offset,
    to which Day numbers are local: clock times are shown at it too."""
    by_patient: dict[str, list[Record]] = defaultdict(list)
    for r in records:
        by_patient[r.patient_id].append(r)
    out.write("crswatch timeline: grade changes and alerts per patient (what each mark means: "
              "crswatch replay --legend)\n")
    for pid, recs in by_patient.items():
        offset = (offsets or {}).get(pid, 0)
        local = f" (clock times {_offset_text(offset)}, the CAR-T dose's offset)" if offset else ""
        out.write(f"\n=== patient {pid} ==={local}\n")
        if any(r.day is None for r in recs):
            out.write("(no CAR-T administration in the input for this patient: days since infusion unknown, "
                      "shown as 'Day ?')\n")
        crs, icans, iec = 0, 0, 0
        day: int | str | None = "start"
        last_evidence: tuple[str, ...] = ()
        printed: dict[str, Record] = {}
        for r in _display_order(recs):
            if r.day != day:
                day = r.day
                out.write(f"\n{_fmt_day(r.day)}\n")
            hhmm = _local_hhmm(r.time, offset)
            flag = " (late)" if r.late else " (correction)" if r.correction else ""
            if isinstance(r, CrsGradeChange):
                crs = r.grade
                out.write(f"  {hhmm}  CRS grade {r.previous} -> {r.grade} (episode {r.episode}){flag}\n")
            elif isinstance(r, IcansGradeChange):
                icans = r.grade
                out.write(f"  {hhmm}  ICANS grade {r.previous} -> {r.grade}{flag}\n")
            elif isinstance(r, IecHsChange):
                iec = r.level
                out.write(f"  {hhmm}  IEC-HS level {r.previous} -> {r.level}: {r.label}{flag}\n")
                out.write(f"           {r.hscore}\n           {r.hlh2004}\n")
            elif isinstance(r, Alert):
                out.write(f"  {hhmm}  ALERT [{r.severity}] {r.summary}  ({r.id}){flag}\n")
            elif isinstance(r, Retraction):
                target = printed.get(r.retracts)
                what = _describe(target, offset) + " (above)" if target is not None else r.retracts
                out.write(f"  {hhmm}  RETRACTED {what}\n")
            elif isinstance(r, Notice):
                out.write(f"  {hhmm}  NOTICE {r.refers_to}\n")
            printed.setdefault(record_key(r), r)
            if r.evidence and r.evidence == last_evidence:
                out.write("           - (evidence as above)\n")
            else:
                for e in r.evidence:
                    out.write(f"           - {e}\n")
            last_evidence = r.evidence
            if isinstance(r, (CrsGradeChange, IcansGradeChange, IecHsChange)):
                out.write(f"           => now: CRS {crs}, ICANS {icans}, IEC-HS {iec}\n")


def _input_files(args: argparse.Namespace) -> list[Path] | None:
    from streams.feeds.inputs import input_files

    try:
        files = input_files(Path(p) for p in args.files)
    except FileNotFoundError as exc:
        print(f"crswatch: no such file: {exc}", file=sys.stderr)
        return None
    if not files:
        print(f"crswatch: no input files in {' '.join(args.files)}", file=sys.stderr)
        return None
    return files


def _read(args: argparse.Namespace, files: list[Path], counts: ReadCounts, on_reject: Callable[[Rejection], None],
          on_sorted: Callable[[int], None] | None = None) -> Iterator[tuple[str, ClinicalEvent, float]]:
    """The events of the files in `args.order`, each unit counted and its rejections handed on."""
    from tqdm import tqdm

    from streams.feeds.inputs import read_inputs

    fmt = None if args.input_format == "auto" else args.input_format
    total = sum(p.stat().st_size for p in files)
    bar = tqdm(total=total, unit="B", unit_scale=True, file=sys.stderr, desc="read",
               disable=total < PROGRESS_MIN_BYTES or not sys.stderr.isatty())
    done: dict[Path, int] = {}

    def on_unit(unit: Unit) -> None:
        counts.add(unit)
        for rej in unit.normalised.rejected:
            on_reject(rej)
        if unit.path not in done:
            done[unit.path] = unit.path.stat().st_size
            bar.update(done[unit.path])  # whole files: .gz sizes say nothing of the lines read

    def sorted_(n: int) -> None:
        bar.close()  # read and sorted: the caller's bar follows
        if on_sorted is not None:
            on_sorted(n)
    try:
        yield from ordered_events(read_inputs(files, fmt, args.strict, args.hl7_timezone), args.order, on_unit,
                                  on_sorted=sorted_)
    finally:
        bar.close()


def _check_run(args: argparse.Namespace, counts: ReadCounts, folded: int, what: str) -> int:
    rejected = counts.total().rejected
    if args.max_rejections is not None and rejected > args.max_rejections:
        print(f"crswatch: {rejected} input units rejected, more than --max-rejections {args.max_rejections}",
              file=sys.stderr)
        return 3
    if folded == 0:
        print(f"crswatch: no input event was {what}", file=sys.stderr)
        return 1
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    if args.legend:
        sys.stdout.write(LEGEND)
        return 0
    if not args.files:
        print("crswatch: give the files to replay (or --legend)", file=sys.stderr)
        return 2

    from tqdm import tqdm

    from streams.replay import FOLDED, ReadCounts, file_lines, summary_line

    cfg = load_thresholds(args.config)
    files = _input_files(args)
    if files is None:
        return 2
    metrics = None
    if args.metrics_file is not None:
        from streams.observability.metrics import Metrics

        metrics = Metrics(process_metrics=False)
    dead = open(args.dead_letter, "w", encoding="utf-8") if args.dead_letter is not None else None

    def on_reject(rej: Rejection) -> None:
        print(f"crswatch: rejected {rej.source}: [{rej.category}] {rej.reason}", file=sys.stderr)
        if dead is not None:
            dead.write(rej.dead_letter_json() + "\n")
        if metrics is not None:
            metrics.observe_rejected("unknown", rej.category, time.time())

    counts = ReadCounts()
    replayer = Replayer(cfg, metrics=metrics)
    records: list[Record] = []
    out = sys.stdout
    bar = tqdm(disable=True)

    def on_sorted(n: int) -> None:
        nonlocal bar
        bar = tqdm(total=n, unit="ev", file=sys.stderr, desc=args.order + " order",
                   disable=n < PROGRESS_MIN_EVENTS or not sys.stderr.isatty())
    try:
        for _, event, _ in _read(args, files, counts, on_reject, on_sorted):
            bar.update(1)
            if args.events:
                out.write(event.model_dump_json(exclude_none=True) + "\n")
                continue
            new = replayer.apply(event).records
            if args.format == "jsonl":
                for r in new:
                    out.write(record_json(r) + "\n")
            else:
                records.extend(new)
    finally:
        bar.close()
        if dead is not None:
            dead.close()
    if args.format == "text" and not args.events:
        offsets = {pid: log.state.day0_offset_min for pid, log in replayer.logs.items() if log.state.day0_offset_min}
        print_timeline(records, out, offsets)
    out.flush()
    outcomes = None if args.events else replayer.outcomes
    print(summary_line("replay", counts, outcomes), file=sys.stderr)
    if args.verbose:
        for line in file_lines(counts):
            print(line, file=sys.stderr)
    if metrics is not None:
        metrics.write_textfile(args.metrics_file)
    if args.events:
        return _check_run(args, counts, counts.total().events, "read")
    return _check_run(args, counts, sum(replayer.outcomes[k] for k in FOLDED), "applied")


def cmd_publish(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from streams.publish import create_input_topics, publish_events, publish_units
    from streams.replay import ReadCounts, file_lines, summary_line

    files = _input_files(args)
    if files is None:
        return 2
    if not args.broker:
        print("crswatch: no broker: give --broker or set CRSWATCH_BROKER", file=sys.stderr)
        return 2
    check_broker(args.broker)
    create_input_topics(args.broker, args.partitions)
    speed = None if args.as_fast_as_possible else args.speed
    counts = ReadCounts()
    if args.order == "file":  # per patient in file order, patients interleaved by known time
        from streams.feeds.inputs import read_inputs

        units: list[tuple[str, str, Normalised | None]] = []
        for unit in read_inputs(files, None if args.input_format == "auto" else args.input_format, args.strict,
                                args.hl7_timezone):
            counts.add(unit)
            units.append((unit.source, unit.raw, unit.normalised))
        with tqdm(total=len(units), unit="unit", file=sys.stderr, desc="publish",
                  disable=len(units) < PROGRESS_MIN_EVENTS or not sys.stderr.isatty()) as bar:
            result = publish_units(units, args.broker, speed, on_line=lambda _: bar.update(1))
    else:
        bar = tqdm(disable=True)

        def on_sorted(n: int) -> None:
            nonlocal bar
            bar = tqdm(total=n, unit="ev", file=sys.stderr, desc="publish",
                       disable=n < PROGRESS_MIN_EVENTS or not sys.stderr.isatty())
        rejected: list[Rejection] = []
        try:
            result = publish_events(_read(args, files, counts, rejected.append, on_sorted), args.broker, speed,
                                    on_line=lambda _: bar.update(1))
        finally:
            bar.close()
        result.rejected = rejected
        result.ignored = counts.total().ignored
    for rej in result.rejected:
        print(f"crswatch: rejected {rej.source}: [{rej.category}] {rej.reason}", file=sys.stderr)
    topics = ", ".join(f"{t} {n}" for t, n in sorted(result.by_topic.items()))
    print(f"{summary_line('publish', counts, None)}, {result.sent} sent ({topics})", file=sys.stderr)
    if args.verbose:
        for line in file_lines(counts):
            print(line, file=sys.stderr)
    return _check_run(args, counts, result.sent, "sent")


def cmd_worker(args: argparse.Namespace) -> int:
    from streams.settings import ENV, SettingsError, from_env

    for name, var in ENV.items():
        value = getattr(args, name, None)
        if value is not None:
            os.environ[var] = str(value)
    try:
        load_thresholds(from_env().config)
    except SettingsError as exc:
        print(f"crswatch: {exc}", file=sys.stderr)
        return 2
    from streams.app import app

    level = {"warning": "warn", "critical": "crit"}.get(args.loglevel.lower(), args.loglevel.lower())
    sys.argv = ["crswatch", "worker", "--loglevel", level]
    app.main()
    return 0


def cmd_alerts(args: argparse.Namespace) -> int:
    from streams.read_alerts import alert_line, read_alerts

    if not args.broker:
        print("crswatch: no broker: give --broker or set CRSWATCH_BROKER", file=sys.stderr)
        return 2
    n = 0
    try:
        check_broker(args.broker)
        for record, _ in read_alerts(args.broker, args.follow, args.max_wait):
            n += 1
            line = record_json(record) if args.format == "jsonl" else alert_line(record)
            print(line, flush=True)
    except KeyboardInterrupt:
        pass
    print(f"{n} records", file=sys.stderr)
    return 0


def _env(var: str, default: str | None = None) -> str | None:
    return os.environ.get(var, default)


STRICT_HELP = ("FHIR and HL7 files: also validate each FHIR resource with fhir.resources (R4B) and parse each HL7 "
               "message with python-hl7, after the contract checks (slower)")


FILES_HELP = ("input files and folders: native JSONL, FHIR R4 (NDJSON, Bundle, single resource, a Bulk export "
              "folder with one .ndjson or .ndjson.gz per type) and HL7 v2 ORU^R01, detected per file")
ORDER_HELP = ("known (default): by when each fact became known (recorded_time; FHIR issued, then meta.lastUpdated; "
              "HL7 OBR-22, then MSH-7; else event time), as a live monitor would have met it, late events included; "
              "event: by event time, for chart review; file: in the order read (a captured live feed)")


def _add_run_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--order", choices=["known", "event", "file"], default="known", help=ORDER_HELP)
    p.add_argument("--max-rejections", dest="max_rejections", type=int, default=None, metavar="N",
                   help="exit with status 3 when more than N input units are rejected (default: no limit)")
    p.add_argument("-v", "--verbose", action="store_true", help="also one summary line per input file")


def add_worker_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    w = sub.add_parser("worker", help="run the faust streaming worker against a Kafka broker",
                       description="Every option has an environment variable; the option wins.")
    w.add_argument("--broker", help="bootstrap servers host:port[,host:port] (CRSWATCH_BROKER)")
    w.add_argument("--store", choices=["memory", "rocksdb"], help="table store (CRSWATCH_STORE, default memory)")
    w.add_argument("--data-dir", dest="data_dir", help="faust data dir, RocksDB files (CRSWATCH_DATA_DIR)")
    w.add_argument("--web-host", dest="web_host", help="bind address of the web port (CRSWATCH_WEB_HOST, "
                   "default 127.0.0.1)")
    w.add_argument("--web-port", dest="web_port", type=int, help="web port (CRSWATCH_WEB_PORT, default 6066)")
    w.add_argument("--partitions", type=int, help="partitions of the topics it declares (CRSWATCH_PARTITIONS, "
                   "default 4)")
    w.add_argument("--broker-flavor", dest="broker_flavor", choices=["auto", "kafka", "tansu"],
                   help="tansu enables the test-broker workarounds; auto (default) takes Tansu when the broker's "
                   "cluster id says so (CRSWATCH_BROKER_FLAVOR)")
    w.add_argument("--app-id", dest="app_id", help="consumer group and table prefix (CRSWATCH_APP_ID)")
    w.add_argument("--config", help="thresholds file, TOML or JSON (CRSWATCH_CONFIG)")
    w.add_argument("--max-idle-seconds", dest="max_idle_seconds", type=float,
                   help="how long to hold a partition for an input topic that is behind (CRSWATCH_MAX_IDLE_SECONDS)")
    w.add_argument("--flush-seconds", dest="flush_seconds", type=float,
                   help="how often a changed patient's log is written to the changelog (CRSWATCH_FLUSH_SECONDS, "
                   "default 1.0)")
    w.add_argument("--strict-feeds", dest="strict_feeds", action="store_const", const=True, default=None,
                   help="also validate raw FHIR with fhir.resources and parse raw HL7 with python-hl7 "
                   "(CRSWATCH_STRICT_FEEDS, default off: slower)")
    w.add_argument("--hl7-timezone", dest="hl7_timezone", type=_timezone, help=HL7_TZ_HELP)
    w.add_argument("--security-protocol", dest="security_protocol",
                   choices=["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"], help="CRSWATCH_SECURITY_PROTOCOL")
    w.add_argument("--sasl-mechanism", dest="sasl_mechanism", choices=["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"],
                   help="CRSWATCH_SASL_MECHANISM")
    w.add_argument("--sasl-username", dest="sasl_username", help="CRSWATCH_SASL_USERNAME")
    w.add_argument("--ssl-cafile", dest="ssl_cafile", help="CA bundle (CRSWATCH_SSL_CAFILE)")
    w.add_argument("--ssl-certfile", dest="ssl_certfile", help="client certificate (CRSWATCH_SSL_CERTFILE)")
    w.add_argument("--ssl-keyfile", dest="ssl_keyfile", help="client key (CRSWATCH_SSL_KEYFILE)")
    w.add_argument("--loglevel", default=_env("CRSWATCH_LOGLEVEL", "info"),
                   choices=["debug", "info", "warn", "warning", "error", "crit", "critical"],
                   help="CRSWATCH_LOGLEVEL (default info)")
    w.set_defaults(func=cmd_worker)

    a = sub.add_parser("alerts", help="print the alerts in the crs-alerts topic")
    a.add_argument("--broker", default=_env("CRSWATCH_BROKER"), help="host:port (env CRSWATCH_BROKER)")
    a.add_argument("--follow", action="store_true", help="keep waiting for new alerts")
    a.add_argument("--max-wait", dest="max_wait", type=float, default=None,
                   help="exit after this many seconds without a new alert (default 2 without --follow)")
    a.add_argument("--format", choices=["text", "jsonl"], default="text")
    a.set_defaults(func=cmd_alerts)


def cmd_export(args: argparse.Namespace) -> int:
    from streams.feeds.export import export_fhir_lines, to_hl7
    from streams.feeds.normalised import Reject

    path = Path(args.file)
    if not path.is_file():
        print(f"crswatch: no such file: {path}", file=sys.stderr)
        return 2
    out = sys.stdout if args.output in (None, "-") else open(args.output, "w", encoding="utf-8", newline="")
    try:
        standard = extension = skipped = 0
        for source, line in read_lines([path]):
            try:
                if args.format == "fhir":
                    text, is_standard = export_fhir_lines(line)
                else:
                    event = parse_event(line)
                    message = to_hl7(event, event.event_id)
                    if message is None:  # treatments, context, assessments: no ORU^R01 form
                        skipped += 1
                        continue
                    text, is_standard = message.rstrip("\r"), True
            except (ValueError, Reject) as exc:
                print(f"crswatch: rejected {source}: {exc}", file=sys.stderr)
                continue
            out.write(text + ("\n" if args.format == "fhir" else "\r\n"))
            standard += is_standard
            extension += not is_standard
    finally:
        if out is not sys.stdout:
            out.close()
    if args.format == "fhir":
        print(f"exported {standard + extension} events: {standard} as contract resources, {extension} as crswatch "
              "native-event resources (outside the hospital contract)", file=sys.stderr)
    else:
        print(f"exported {standard} events as HL7 v2 ORU^R01 messages (vitals and labs); {skipped} events have no "
              "ORU^R01 form here (treatments, assessments, context, labs without a contract LOINC code: use "
              "--format fhir)", file=sys.stderr)
    return 0


def cmd_mllp(args: argparse.Namespace) -> int:
    from streams.mllp import Limits, serve_forever

    broker = None if args.out else args.broker  # --out wins over CRSWATCH_BROKER
    if broker:
        check_broker(broker)
    if not broker and not args.out:
        print("crswatch: give --broker (or CRSWATCH_BROKER) or --out FILE|-", file=sys.stderr)
        return 2
    limits = Limits(args.max_message_bytes, args.idle_seconds, args.max_connections)
    return serve_forever(args.host, args.port, broker=broker, out=args.out, strict=args.strict, limits=limits,
                         metrics_port=args.metrics_port, hl7_timezone=args.hl7_timezone)


def cmd_resolve_key(args: argparse.Namespace) -> int:
    """The patient behind an Alertmanager `patient_key`, for a user holding the secret."""
    from streams.observability.alertmanager import ENV_SECRET, ENV_SECRET_FILE, resolve_patient_key

    secret = os.environ.get(ENV_SECRET, "").encode("utf-8")
    if not secret and os.environ.get(ENV_SECRET_FILE):
        secret = Path(os.environ[ENV_SECRET_FILE]).read_bytes().strip()
    if not secret:
        print(f"crswatch: set {ENV_SECRET} or {ENV_SECRET_FILE} (the secret the worker keys patients with)",
              file=sys.stderr)
        return 2
    candidates: set[str] = set()
    if args.ids:
        candidates.update(line.strip() for line in Path(args.ids).read_text(encoding="utf-8").splitlines()
                          if line.strip())
    if args.broker:
        from streams.read_alerts import patient_ids

        check_broker(args.broker)
        candidates.update(patient_ids(args.broker, args.max_wait))
    if not candidates:
        print("crswatch: no candidate patient ids: give --ids FILE or --broker", file=sys.stderr)
        return 2
    found = resolve_patient_key(args.key, candidates, secret)
    for pid in found:
        print(pid)
    if not found:
        print(f"crswatch: no patient among {len(candidates)} has key {args.key}", file=sys.stderr)
        return 1
    return 0


HL7_TZ_HELP = ("IANA time zone (e.g. Europe/Berlin) of HL7 v2 times that carry no UTC offset (env "
               "CRSWATCH_HL7_TIMEZONE); without it such times are rejected")


def _timezone(name: str) -> str:
    from streams.feeds.hl7v2 import zone

    try:
        zone(name)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return name


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="crswatch", description="CAR-T CRS / IEC-HS toxicity monitor")
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("replay", help="replay case files through the fold in-process (no broker)")
    r.add_argument("files", nargs="*", help=FILES_HELP)
    r.add_argument("--format", choices=["text", "jsonl"], default="text")
    r.add_argument("--legend", action="store_true", help="explain the text timeline's marks, and exit")
    r.add_argument("--config", type=Path, default=None, help="TOML or JSON file overriding alerts.config.Thresholds")
    r.add_argument("--metrics-file", type=Path, default=None,
                   help="write the worker's Prometheus metrics (text format) here at the end")
    r.add_argument("--input-format", choices=["auto", "native", "fhir", "hl7v2"], default="auto",
                   help="input format (default: detected from each file's content)")
    r.add_argument("--strict", action="store_true", help=STRICT_HELP)
    r.add_argument("--hl7-timezone", type=_timezone, default=_env("CRSWATCH_HL7_TIMEZONE"), help=HL7_TZ_HELP)
    _add_run_options(r)
    r.add_argument("--events", action="store_true",
                   help="print the normalised events (JSONL, in replay order) instead of folding them")
    r.add_argument("--dead-letter", dest="dead_letter", type=Path, default=None,
                   help="write every rejected input unit to this file as a dead-letter record (JSONL)")
    r.set_defaults(func=cmd_replay)

    pub = sub.add_parser("publish", help="send case or cohort files to the input topics of a Kafka broker")
    pub.add_argument("files", nargs="+", help=FILES_HELP)
    pub.add_argument("--broker", default=os.environ.get("CRSWATCH_BROKER"),
                     help="bootstrap server host:port (env CRSWATCH_BROKER)")
    pub.add_argument("--partitions", type=int, default=int(os.environ.get("CRSWATCH_PARTITIONS", "4")),
                     help="partitions of input topics it creates (env CRSWATCH_PARTITIONS, default 4)")
    pace = pub.add_mutually_exclusive_group()
    pace.add_argument("--speed", type=float, default=None,
                      help="replay event-time gaps N times faster than real time")
    pace.add_argument("--as-fast-as-possible", action="store_true", help="no pacing (the default)")
    pub.add_argument("--input-format", choices=["auto", "native", "fhir", "hl7v2"], default="auto",
                     help="input format (default: detected from each file's content)")
    pub.add_argument("--strict", action="store_true", help=STRICT_HELP)
    pub.add_argument("--hl7-timezone", type=_timezone, default=_env("CRSWATCH_HL7_TIMEZONE"), help=HL7_TZ_HELP)
    _add_run_options(pub)
    pub.set_defaults(func=cmd_publish)
    add_worker_parser(sub)



    ex = sub.add_parser("export", help="write a native case file in another format")
    ex.add_argument("file", help="native JSONL event file")
    ex.add_argument("--format", choices=["fhir", "hl7"], required=True,
                    help="fhir: FHIR R4 NDJSON (every event); hl7: HL7 v2 ORU^R01 messages (vitals and labs)")
    ex.add_argument("-o", "--output", default=None, help="output file (default stdout)")
    ex.set_defaults(func=cmd_export)

    ml = sub.add_parser("mllp", help="receive HL7 v2 ORU^R01 over MLLP, ACK each message, feed the stream")
    ml.add_argument("--port", type=int, required=True)
    ml.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    ml.add_argument("--broker", default=os.environ.get("CRSWATCH_BROKER"),
                    help="produce events and dead letters to this broker (env CRSWATCH_BROKER)")
    ml.add_argument("--out", default=None,
                    help="without a broker: write native JSONL events to this file ('-' = stdout)")
    ml.add_argument("--strict", action="store_true", help="also parse every message with python-hl7")
    ml.add_argument("--max-message-bytes", type=int, default=1_048_576,
                    help="refuse (AR) a message over this size and close its connection (default 1 MiB)")
    ml.add_argument("--idle-seconds", type=float, default=120.0,
                    help="close a connection with no complete message for this long (default 120)")
    ml.add_argument("--metrics-port", type=int, default=None,
                    help="serve Prometheus /metrics on this port of --host: dead letters by reason, feed units")
    ml.add_argument("--max-connections", type=int, default=64,
                    help="close connections beyond this many at once (default 64)")
    ml.add_argument("--hl7-timezone", type=_timezone, default=_env("CRSWATCH_HL7_TIMEZONE"), help=HL7_TZ_HELP)
    ml.set_defaults(func=cmd_mllp)

    rk = sub.add_parser("resolve-key", help="find the patient behind an Alertmanager patient_key (needs the secret)")
    rk.add_argument("key", help="the patient_key label of an Alertmanager alert")
    rk.add_argument("--ids", help="a file of candidate patient ids, one a line")
    rk.add_argument("--broker", default=os.environ.get("CRSWATCH_BROKER"),
                    help="take the candidates from the keys of the patient-state topic (env CRSWATCH_BROKER)")
    rk.add_argument("--max-wait", type=float, default=5.0, help="seconds to read the topic (default 5)")
    rk.set_defaults(func=cmd_resolve_key)

    cf = sub.add_parser("config", help="print every threshold with its default, source and unit (TOML)")
    cf.add_argument("--check", metavar="FILE", help="check a thresholds file instead: ok, or one line saying why not")
    cf.set_defaults(func=cmd_config)
    return p


def cmd_config(args: argparse.Namespace) -> int:
    from streams.settings import thresholds_toml

    if args.check:
        load_thresholds(args.check)
        print(f"{args.check}: ok")
        return 0
    sys.stdout.write(thresholds_toml())
    return 0


def main(argv: list[str] | None = None) -> int:
    from streams.settings import SettingsError

    args = build_parser().parse_args(argv)
    try:
        rc: int = args.func(args)
    except SettingsError as exc:  # a bad setting or thresholds file: one line, no traceback
        print(f"crswatch: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # the reader went away (`crswatch replay ... | head`): not an error
        # Python's own advice: point stdout at devnull so the flush at exit does not fail again
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    return rc


if __name__ == "__main__":
    sys.exit(main())
