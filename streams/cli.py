"""The `crswatch` command."""

from __future__ import annotations

import argparse
import os
import sys
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

from models.records import Alert, CrsGradeChange, IcansGradeChange, IecHsChange, Notice, Record, Retraction
from streams.feeds.normalised import Normalised
from streams.replay import Replayer, read_lines
from streams.review.cli import add_review_parsers
from streams.settings import load_thresholds

PROGRESS_MIN_BYTES = 5_000_000  # show a progress bar for inputs larger than this


def record_json(r: Record) -> str:
    return r.model_dump_json()


def _fmt_day(day: int | None) -> str:
    return "Day ?" if day is None else f"Day {day:+d}"


def print_timeline(records: list[Record], out: TextIO) -> None:
    by_patient: dict[str, list[Record]] = defaultdict(list)
    for r in records:
        by_patient[r.patient_id].append(r)
    for pid, recs in by_patient.items():
        out.write(f"\n=== patient {pid} ===\n")
        crs, icans, iec = 0, 0, 0
        day: int | str | None = "start"
        last_evidence: tuple[str, ...] = ()
        for r in sorted(recs, key=lambda x: x.time):
            if r.day != day:
                day = r.day
                out.write(f"\n{_fmt_day(r.day)}\n")
            hhmm = r.time[11:16]
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
                out.write(f"  {hhmm}  RETRACTED {r.retracts}\n")
            elif isinstance(r, Notice):
                out.write(f"  {hhmm}  NOTICE {r.refers_to}\n")
            if r.evidence and r.evidence == last_evidence:
                out.write("           - (evidence as above)\n")
            else:
                for e in r.evidence:
                    out.write(f"           - {e}\n")
            last_evidence = r.evidence
            if isinstance(r, (CrsGradeChange, IcansGradeChange, IecHsChange)):
                out.write(f"           => now: CRS {crs}, ICANS {icans}, IEC-HS {iec}\n")


def cmd_replay(args: argparse.Namespace) -> int:
    cfg = load_thresholds(args.config)
    paths = [Path(p) for p in args.files]
    for p in paths:
        if not p.is_file():
            print(f"crswatch: no such file: {p}", file=sys.stderr)
            return 2
    total = sum(p.stat().st_size for p in paths)
    metrics = None
    if args.metrics_file is not None:
        from streams.observability.metrics import Metrics

        metrics = Metrics(process_metrics=False)
    replayer = Replayer(cfg, metrics=metrics)
    records: list[Record] = []
    out = sys.stdout
    from tqdm import tqdm

    with tqdm(total=total, unit="B", unit_scale=True, file=sys.stderr, disable=total < PROGRESS_MIN_BYTES,
              desc="replay") as bar:
        for source, line, normalised in _units(paths, args.input_format, args.strict):
            new = replayer.feed(line, source) if normalised is None else replayer.feed_normalised(normalised)
            bar.update(len(line.encode("utf-8")))
            if args.format == "jsonl":
                for r in new:
                    out.write(record_json(r) + "\n")
            else:
                records.extend(new)
    if args.format == "text":
        print_timeline(records, out)
        counts = ", ".join(f"{k} {v}" for k, v in sorted(replayer.outcomes.items()))
        out.write(f"\nevents: {counts}\n")
    for rej in replayer.rejected:
        print(f"crswatch: rejected {rej.source}: {rej.reason}", file=sys.stderr)
    if metrics is not None:
        metrics.write_textfile(args.metrics_file)
    return 0


def cmd_publish(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from streams.publish import create_input_topics, publish_units

    paths = [Path(p) for p in args.files]
    for p in paths:
        if not p.is_file():
            print(f"crswatch: no such file: {p}", file=sys.stderr)
            return 2
    if not args.broker:
        print("crswatch: no broker: give --broker or set CRSWATCH_BROKER", file=sys.stderr)
        return 2
    create_input_topics(args.broker, args.partitions)
    units = list(_units(paths, args.input_format, args.strict))
    with tqdm(total=len(units), unit="ev", file=sys.stderr, disable=len(units) < 10_000, desc="publish") as bar:
        result = publish_units(units, args.broker, None if args.as_fast_as_possible else args.speed,
                               on_line=lambda _: bar.update(1))
    for rej in result.rejected:
        print(f"crswatch: rejected {rej.source}: {rej.reason}", file=sys.stderr)
    topics = ", ".join(f"{t} {n}" for t, n in sorted(result.by_topic.items()))
    print(f"published {result.sent} events ({topics}); rejected {len(result.rejected)}; ignored {result.ignored}",
          file=sys.stderr)
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    from streams.settings import ENV, SettingsError, from_env

    for name, var in ENV.items():
        value = getattr(args, name, None)
        if value is not None:
            os.environ[var] = str(value)
    try:
        from_env()
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
    w.add_argument("--broker-flavor", dest="broker_flavor", choices=["kafka", "tansu"],
                   help="tansu enables the test-broker workarounds (CRSWATCH_BROKER_FLAVOR, default kafka)")
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


def _units(paths: list[Path], input_format: str, strict: bool = False
           ) -> Iterator[tuple[str, str, Normalised | None]]:
    """Each file's input units in order: native lines as text (None), FHIR and HL7 v2 normalised."""
    from streams.feeds.inputs import detect_format, read_units

    for path in paths:
        with path.open("rb") as fh:
            fmt = detect_format(fh.read(4096)) if input_format == "auto" else input_format
        if fmt == "native":
            for source, line in read_lines([path]):
                yield source, line, None
        else:
            yield from read_units(path, fmt, strict)  # type: ignore[arg-type]


def cmd_export(args: argparse.Namespace) -> int:
    from streams.feeds.export import export_fhir_lines

    path = Path(args.file)
    if not path.is_file():
        print(f"crswatch: no such file: {path}", file=sys.stderr)
        return 2
    out = sys.stdout if args.output in (None, "-") else open(args.output, "w", encoding="utf-8")
    try:
        standard = extension = 0
        for source, line in read_lines([path]):
            try:
                text, is_standard = export_fhir_lines(line)
            except ValueError as exc:
                print(f"crswatch: rejected {source}: {exc}", file=sys.stderr)
                continue
            out.write(text + "\n")
            standard += is_standard
            extension += not is_standard
    finally:
        if out is not sys.stdout:
            out.close()
    print(f"exported {standard + extension} events: {standard} as contract resources, {extension} as crswatch "
          "native-event resources (outside the hospital contract)", file=sys.stderr)
    return 0


def cmd_mllp(args: argparse.Namespace) -> int:
    from streams.mllp import serve_forever

    broker = None if args.out else args.broker  # --out wins over CRSWATCH_BROKER
    if not broker and not args.out:
        print("crswatch: give --broker (or CRSWATCH_BROKER) or --out FILE|-", file=sys.stderr)
        return 2
    return serve_forever(args.host, args.port, broker=broker, out=args.out, strict=args.strict)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="crswatch", description="CAR-T CRS / IEC-HS toxicity monitor")
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("replay", help="replay case files through the fold in-process (no broker)")
    r.add_argument("files", nargs="+", help="native JSONL event files")
    r.add_argument("--format", choices=["text", "jsonl"], default="text")
    r.add_argument("--config", type=Path, default=None, help="TOML or JSON file overriding alerts.config.Thresholds")
    r.add_argument("--metrics-file", type=Path, default=None,
                   help="write the worker's Prometheus metrics (text format) here at the end")


    r.add_argument("--input-format", choices=["auto", "native", "fhir", "hl7v2"], default="auto",
                   help="input format (default: detected from each file's content)")
    r.add_argument("--strict", action="store_true", help=STRICT_HELP)
    r.set_defaults(func=cmd_replay)

    pub = sub.add_parser("publish", help="send case or cohort files to the input topics of a Kafka broker")
    pub.add_argument("files", nargs="+", help="native JSONL event files")
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
    pub.set_defaults(func=cmd_publish)
    add_worker_parser(sub)
    add_review_parsers(sub)



    ex = sub.add_parser("export", help="write a native case file in another format")
    ex.add_argument("file", help="native JSONL event file")
    ex.add_argument("--format", choices=["fhir"], required=True, help="fhir: FHIR R4 NDJSON")
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
    ml.set_defaults(func=cmd_mllp)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    rc: int = args.func(args)
    return rc


if __name__ == "__main__":
    sys.exit(main())
