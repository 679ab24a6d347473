"""The `crswatch report` and `crswatch whatif` subcommands (registered by streams.cli)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from streams.review.leadtime import (
    DEFAULT_LOOKBACK_HOURS,
    DEFAULT_REPEAT_HOURS,
    AlertRef,
    LeadRow,
    escalations,
    lead_times,
)
from streams.review.report import (
    PageLinks,
    page_name,
    whatif_json,
    whatif_text,
    write_index,
    write_patient_page,
    write_whatif_html,
)
from streams.review.run import ReviewReplay, replay_for_review
from streams.review.series import alerts_of, max_levels
from streams.review.whatif import DEFAULT_MAX_MOVE_HOURS, grade_days, patient_diff, totals
from streams.settings import load_thresholds


def _check(paths: list[Path]) -> bool:
    for p in paths:
        if not p.exists():
            print(f"crswatch: no such file or folder: {p}", file=sys.stderr)
            return False
    return True


def _leads(rr: ReviewReplay, k: int, pid: str, args: argparse.Namespace) -> list[LeadRow]:
    refs = [AlertRef.of(a) for a in alerts_of(rr.records[k].get(pid, []))]
    return lead_times(escalations(rr.series[pid], args.repeat_hours), refs, args.lookback_hours)


def _days(text: str | None) -> tuple[float, float] | None:
    if not text:
        return None
    lo, hi = (float(x) for x in text.split(":"))
    return (lo, hi + 1.0)  # Day TO included up to its midnight


def _report_rejections(rr: ReviewReplay) -> None:
    for rej in rr.replayers[0].rejected:
        print(f"crswatch: rejected {rej.source}: {rej.reason}", file=sys.stderr)


def cmd_report(args: argparse.Namespace) -> int:
    paths = [Path(p) for p in args.files]
    if not _check(paths):
        return 2
    cfg = load_thresholds(args.config)
    rr = replay_for_review(paths, [cfg], args.input_format, args.strict, args.bucket_minutes * 60, order=args.order)
    _report_rejections(rr)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    entries = []
    for pid in rr.patients:
        records = rr.records[0].get(pid, [])
        rows = _leads(rr, 0, pid, args)
        name = page_name(pid)
        png = None if args.no_png else name[:-5] + ".png"
        write_patient_page(out / name, rr.series[pid], records, cfg, rows, f"Patient {pid}", args.js,
                           PageLinks(index="index.html"), png, _days(args.days))
        entries.append((pid, name, max_levels(records), len(alerts_of(records)),
                        sum(1 for r in rows if not r.preceded), png))
    note = (f"{len(entries)} patients, {rr.events} events from {len(paths)} file(s), replayed in {rr.seconds:.1f} s "
            f"with thresholds {args.config or 'default'}.")
    write_index(out / "index.html", entries, note)
    print(f"report: {len(entries)} patient pages and index.html in {out} ({note})", file=sys.stderr)
    return 0


def cmd_whatif(args: argparse.Namespace) -> int:
    paths = [Path(p) for p in args.files]
    if not _check(paths):
        return 2
    current, changed = load_thresholds(args.base), load_thresholds(args.config)
    rr = replay_for_review(paths, [current, changed], args.input_format, args.strict, args.bucket_minutes * 60,
                           desc="whatif", order=args.order)
    _report_rejections(rr)
    diffs = []
    days_a, days_b, leads_a, leads_b = [], [], [], []
    rows_by: dict[str, tuple[list[LeadRow], list[LeadRow]]] = {}
    for pid in rr.patients:
        s = rr.series[pid]
        recs_a, recs_b = rr.records[0].get(pid, []), rr.records[1].get(pid, [])
        la, lb = _leads(rr, 0, pid, args), _leads(rr, 1, pid, args)
        da = grade_days(recs_a, s.day0_ts, s.first_ts, s.last_ts)
        db = grade_days(recs_b, s.day0_ts, s.first_ts, s.last_ts)
        diffs.append(patient_diff(pid, [AlertRef.of(a) for a in alerts_of(recs_a)],
                                  [AlertRef.of(a) for a in alerts_of(recs_b)], da, db, la, lb, args.max_move_hours))
        days_a.append(da)
        days_b.append(db)
        leads_a += la
        leads_b += lb
        rows_by[pid] = (la, lb)
    t = totals(diffs, days_a, days_b, leads_a, leads_b)
    meta: dict[str, Any] = {"current_config": str(args.base or "defaults"), "changed_config": str(args.config),
                            "files": [str(p) for p in paths], "events": rr.events, "seconds": round(rr.seconds, 2),
                            "max_move_hours": args.max_move_hours, "lookback_hours": args.lookback_hours}
    if args.html:
        out = Path(args.html)
        out.mkdir(parents=True, exist_ok=True)
        links: dict[str, tuple[str, str]] = {}
        for d in diffs:
            if not d.changed:
                continue
            pid = d.patient_id
            cur, chg = "current-" + page_name(pid), "changed-" + page_name(pid)
            la, lb = rows_by[pid]
            write_patient_page(out / cur, rr.series[pid], rr.records[0].get(pid, []), current, la,
                               f"Patient {pid}: current thresholds ({meta['current_config']})", args.js,
                               PageLinks("index.html", ("changed thresholds", chg)))
            write_patient_page(out / chg, rr.series[pid], rr.records[1].get(pid, []), changed, lb,
                               f"Patient {pid}: changed thresholds ({meta['changed_config']})", args.js,
                               PageLinks("index.html", ("current thresholds", cur)))
            links[pid] = (cur, chg)
        write_whatif_html(out / "index.html", diffs, t, meta, links)
        print(f"whatif: HTML in {out / 'index.html'}", file=sys.stderr)
    sys.stdout.write(whatif_json(diffs, t, meta) + "\n" if args.format == "json" else whatif_text(diffs, t, meta))
    print(f"whatif: {len(diffs)} patients, {rr.events} events, {len(rr.cfgs)} threshold sets, "
          f"{rr.seconds:.1f} s", file=sys.stderr)
    return 0


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("files", nargs="+", help="input files and folders (native JSONL, FHIR, HL7 v2), as for replay")
    p.add_argument("--order", choices=["known", "event", "file"], default="known",
                   help="replay order, as for replay (default known: what a live monitor would have shown)")
    p.add_argument("--input-format", choices=["auto", "native", "fhir", "hl7v2"], default="auto")
    p.add_argument("--strict", action="store_true",
                   help="validate FHIR with fhir.resources / parse HL7 with python-hl7")
    p.add_argument("--bucket-minutes", type=float, default=15.0,
                   help="vital signs are drawn as the lowest and highest reading per bucket (default 15 min)")
    p.add_argument("--lookback-hours", type=float, default=DEFAULT_LOOKBACK_HOURS,
                   help="related alerts this far before or after an escalation are compared with it (default 72)")
    p.add_argument("--repeat-hours", type=float, default=DEFAULT_REPEAT_HOURS,
                   help="a repeat of the same escalation within this many hours continues it (default 24)")


def add_review_parsers(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    rp = sub.add_parser("report", help="one offline HTML page per patient (timeline figure, lead time) + index")
    _common(rp)
    rp.add_argument("--out", "-o", default="crswatch-report", help="output folder (default crswatch-report)")
    rp.add_argument("--config", type=Path, default=None, help="thresholds file (TOML or JSON)")
    rp.add_argument("--js", choices=["inline", "beside"], default="inline",
                    help="plotly.js inlined in every page (default) or written once beside them")
    rp.add_argument("--days", default=None, metavar="FROM:TO",
                    help="show Days FROM to TO (inclusive) first, e.g. 4:12; the page can zoom out")
    rp.add_argument("--no-png", action="store_true", help="skip the static PNG of each figure (matplotlib)")
    rp.set_defaults(func=cmd_report)

    wp = sub.add_parser("whatif", help="replay with the current and changed thresholds; what alerts, grades and "
                        "lead times change")
    _common(wp)
    wp.add_argument("--config", type=Path, required=True, help="the changed thresholds (TOML or JSON)")
    wp.add_argument("--base", type=Path, default=None, help="the current thresholds (default: built-in defaults)")
    wp.add_argument("--format", choices=["text", "json"], default="text")
    wp.add_argument("--html", default=None, help="also write an HTML page (and both figures of each changed "
                    "patient) to this folder")
    wp.add_argument("--js", choices=["inline", "beside"], default="beside",
                    help="plotly.js for the figure pages: beside them, once (default), or inlined in each")
    wp.add_argument("--max-move-hours", type=float, default=DEFAULT_MAX_MOVE_HOURS,
                    help="an alert at most this far from its counterpart has moved; further, removed + added")
    wp.set_defaults(func=cmd_whatif)
