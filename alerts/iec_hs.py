"""IEC-HS (HLH-like syndrome) suspicion: a transparent rule set that lists its evidence.

The Hines et al. 2023 criteria and grading tables could not be retrieved; every IEC-HS
criterion below is UNVERIFIED [U] (docs/clinical-rules.md). The levels are therefore an
IN-HOUSE suspicion scale for review by the team, not the Hines grade:

- ferritin criterion F: ferritin > 2x baseline (or > 2x ULN without a baseline) [U],
  and/or rapidly rising [U]: IN-HOUSE rule, the newest value >= config.ferritin_rise_ratio x
  the lowest value of the config.ferritin_rise_window_hours before it, and above
  config.ferritin_rise_floor_fold_uln x ULN (no rise inside the normal range).
- major features M [U]: hypofibrinogenemia (< 150 mg/dL), cytopenias (HLH-2004 lineage
  thresholds in >= 2 lineages, below the baseline when known, and collected after the
  expected post-lymphodepletion nadir, config.cytopenia_nadir_days; or documented
  pancytopenia), transaminitis (ALT/AST > 5x ULN), hemophagocytosis.
- other features O [U]: LDH > ULN, fasting triglycerides > 265 mg/dL, splenomegaly.

Level 3 "strongly suspected": F with >= 2 major features, or F with hemophagocytosis.
Level 2 "suspected": F with >= 1 major feature, or with >= 1 other feature when CRS is
not active (config.iec_hs_other_features_during_crs: CRS itself raises ferritin and LDH).
Level 1 "watch": F alone (ferritin-only pre-alert, Ruemmele 2025 Day +21), or >= 2 major
features without F.
Timing (Hines 2023, as recalled [U]): "HLH-like features during active CRS" while a CRS
episode that began before the suspicion is active; "IEC-HS after CRS resolution" once CRS
has resolved, and also when a CRS episode opened after the suspicion began (its fever may
be IEC-HS itself: the fold flags such an episode uncertain).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from alerts.config import Thresholds
from models.labvalue import LabValue

LEVEL_NAMES = {0: "none", 1: "watch", 2: "suspected", 3: "strongly suspected"}


@dataclass(frozen=True, slots=True)
class TimedValue:
    value: LabValue
    ts: float
    describe: Callable[[], str]  # builds the evidence text only when it is used

    @property
    def text(self) -> str:
        """Evidence text, e.g. "ferritin >202000 ng/mL collected Day +9 04:00 [m22-040]"."""
        return self.describe()


@dataclass(frozen=True, slots=True)
class IecHsInputs:
    ferritin: TimedValue | None = None
    ferritin_previous: TimedValue | None = None
    ferritin_baseline: LabValue | None = None
    ferritin_earlier: tuple[TimedValue, ...] = ()  # earlier kept values: the rapid-rise window (ferritin_previous
    #                                                 is used when this is empty)
    fibrinogen: TimedValue | None = None
    platelets: TimedValue | None = None
    anc: TimedValue | None = None
    hemoglobin: TimedValue | None = None
    alt: TimedValue | None = None
    ast: TimedValue | None = None
    ldh: TimedValue | None = None
    triglycerides: TimedValue | None = None
    count_baselines: tuple[tuple[str, LabValue], ...] = ()  # ("platelets" | "anc" | "hemoglobin", baseline)
    documented: tuple[tuple[str, str], ...] = ()  # (finding kind, evidence text) documented present
    crs_active: bool = False
    crs_seen: bool = False
    nadir_end_ts: float | None = None  # end of the expected post-lymphodepletion nadir (None: Day 0 unknown)
    nadir_end_day: int | None = None
    crs_after_onset: str | None = None  # a CRS episode opened after the suspicion began: why it is not "during"
    others_since: float | None = None  # LDH/triglycerides collected before this (the last CRS resolution) were
    #                                    collected during CRS


@dataclass(frozen=True, slots=True)
class IecHsAssessment:
    level: int
    label: str
    evidence: tuple[str, ...]
    criteria: tuple[str, ...] = ()  # names of the criteria met, e.g. ("ferritin", "fibrinogen")


def ferritin_rise(prev: TimedValue | None, cur: TimedValue | None, cfg: Thresholds) -> str | None:
    """IN-HOUSE rapid-rise rule: cur >= ratio x prev within the window, using certain bounds only.

    Only a newest value certainly above the floor (config.ferritin_rise_floor_fold_uln x ULN) counts.
    """
    if prev is None or cur is None:
        return None
    floor = cfg.ferritin_rise_floor_fold_uln * cfg.ferritin_uln_ng_ml
    if cur.value.above(floor) is not True:
        return None
    hours = (cur.ts - prev.ts) / 3600.0
    if hours <= 0 or hours > cfg.ferritin_rise_window_hours:
        return None
    if prev.value.comparator in (">", ">="):
        return None  # previous value is only a lower bound: the ratio is unknown
    if prev.value.value <= 0:
        return None
    # cur is certainly >= its number when uncensored or ">"; "<" gives no lower bound.
    if cur.value.comparator in ("<", "<="):
        return None
    ratio = cur.value.value / prev.value.value
    if ratio < cfg.ferritin_rise_ratio:
        return None
    bound = ">=" if cur.value.comparator else ""
    return (
        f"ferritin rose {bound}{ratio:.2f}x in {hours:.0f} h ({prev.text} -> {cur.text}); IN-HOUSE rule: "
        f">= {cfg.ferritin_rise_ratio:g}x the lowest value of the previous {cfg.ferritin_rise_window_hours:g} h, "
        f"newest above {floor:g} ng/mL ({cfg.ferritin_rise_floor_fold_uln:g}x ULN {cfg.ferritin_uln_ng_ml:g}, "
        f"in-house) [U]"
    )


def ferritin_rise_over_window(
    cur: TimedValue | None, earlier: Sequence[TimedValue], cfg: Thresholds
) -> str | None:
    """The rapid-rise rule against the lowest earlier value of the window (IN-HOUSE, [U]).

    Judging against the window's lowest value, not the previous value alone, keeps a rise that is
    still there when the same result is re-sent or a higher value follows 12 h later. The lowest
    value is the one whose number bounds the true value from above (uncensored, or "<"/"<=").
    """
    if cur is None:
        return None
    window = cfg.ferritin_rise_window_hours * 3600
    best: TimedValue | None = None
    for tv in earlier:
        if not 0 < cur.ts - tv.ts <= window or tv.value.comparator in (">", ">="):
            continue
        if best is None or tv.value.value < best.value.value:
            best = tv
    return ferritin_rise(best, cur, cfg)


def assess(x: IecHsInputs, cfg: Thresholds) -> IecHsAssessment:
    evidence: list[str] = []
    documented = dict(x.documented)

    # Ferritin criterion.
    ferritin_ok = False
    criteria: list[str] = []
    if x.ferritin_earlier:
        rapid = ferritin_rise_over_window(x.ferritin, x.ferritin_earlier, cfg)
    else:
        rapid = ferritin_rise(x.ferritin_previous, x.ferritin, cfg)
    if x.ferritin is not None:
        if x.ferritin_baseline is not None:
            reference, ref_name = x.ferritin_baseline.value, f"baseline {x.ferritin_baseline}"
        else:
            reference, ref_name = cfg.ferritin_uln_ng_ml, f"ULN {cfg.ferritin_uln_ng_ml:g} (in-house default)"
        limit = cfg.ferritin_fold_over_reference * reference
        if x.ferritin.value.above(limit) is True:
            ferritin_ok = True
            evidence.append(f"ferritin > {cfg.ferritin_fold_over_reference:g}x {ref_name}: {x.ferritin.text} [U]")
    if rapid is not None:
        ferritin_ok = True
        evidence.append(rapid)

    majors: list[str] = []
    others: list[str] = []

    fib = x.fibrinogen
    if fib is not None and fib.value.below(cfg.fibrinogen_low_mg_dl) is True:
        majors.append(f"hypofibrinogenemia < {cfg.fibrinogen_low_mg_dl:g} mg/dL: {fib.text} [U]")
    elif "hypofibrinogenemia" in documented:
        majors.append(f"hypofibrinogenemia documented without a value: {documented['hypofibrinogenemia']}")

    # "New, worsening or refractory" cytopenias [U]: below the HLH-2004 threshold and, when the
    # baseline count is known, below the baseline too (after lymphodepletion counts are often
    # already low: a count better than baseline is not new or worsening).
    # After lymphodepletion the counts fall as expected (nadir, IN-HOUSE config.cytopenia_nadir_days):
    # a low count then is not "new": only counts collected after the nadir window are judged.
    baselines = dict(x.count_baselines)
    low: list[str] = []
    nadir: list[str] = []
    for name, tv, limit in (
        ("hemoglobin", x.hemoglobin, cfg.hemoglobin_low_g_dl),
        ("platelets", x.platelets, cfg.platelets_low_10e9_l),
        ("anc", x.anc, cfg.anc_low_10e9_l),
    ):
        if tv is None or tv.value.below(limit) is not True:
            continue
        base = baselines.get(name)
        if base is not None and tv.value.less_than(base) is not True:
            continue
        if x.nadir_end_ts is not None and tv.ts < x.nadir_end_ts:
            nadir.append(tv.text)
            continue
        low.append(tv.text + (f" (baseline {base})" if base is not None else ""))
    if len(low) >= 2:
        majors.append(f"new or worsening cytopenias in {len(low)} lineages (HLH-2004 thresholds): "
                      f"{'; '.join(low)} [U]")
    elif "pancytopenia" in documented:
        majors.append(f"pancytopenia documented: {documented['pancytopenia']}")
    notes: list[str] = []
    if nadir:
        notes.append(f"not counted as new cytopenias: {'; '.join(nadir)}: within the expected post-lymphodepletion "
                     f"nadir (up to Day +{x.nadir_end_day}, in-house cytopenia_nadir_days) [U]")

    for name, tv, uln in (("ALT", x.alt, cfg.alt_uln_u_l), ("AST", x.ast, cfg.ast_uln_u_l)):
        if tv is not None and tv.value.above(cfg.transaminase_fold_uln * uln) is True:
            majors.append(f"transaminitis: {name} > {cfg.transaminase_fold_uln:g}x ULN {uln:g}: {tv.text} [U]")
            break
    hemophagocytosis = "hemophagocytosis" in documented
    if hemophagocytosis:
        majors.append(f"hemophagocytosis reported: {documented['hemophagocytosis']}")

    # Other manifestations collected during a CRS episode are CRS's as much as IEC-HS's (in-house,
    # config.iec_hs_other_features_during_crs): they are listed, but raise the level only when collected
    # after the last CRS episode resolved, and never while CRS is active.
    during: list[str] = []
    counting = 0
    if x.ldh is not None and x.ldh.value.above(cfg.ldh_uln_u_l) is True:
        others.append(f"LDH > ULN {cfg.ldh_uln_u_l:g} (in-house default): {x.ldh.text} [U]")
        if x.others_since is not None and x.ldh.ts < x.others_since:
            during.append("LDH")
        else:
            counting += 1
    if x.triglycerides is not None and x.triglycerides.value.above(cfg.triglycerides_high_mg_dl) is True:
        others.append(f"triglycerides > {cfg.triglycerides_high_mg_dl:g} mg/dL: {x.triglycerides.text} [U]")
        if x.others_since is not None and x.triglycerides.ts < x.others_since:
            during.append("triglycerides")
        else:
            counting += 1
    if "splenomegaly" in documented:
        others.append(f"splenomegaly documented: {documented['splenomegaly']}")
        counting += 1

    lenient = cfg.iec_hs_other_features_during_crs
    others_count = bool(others) and (lenient or (not x.crs_active and counting > 0))
    if ferritin_ok and others and not majors and not others_count:
        if x.crs_active:
            notes.append("during active CRS the other manifestations do not raise the level without a major "
                         "feature (CRS itself raises ferritin and LDH; in-house iec_hs_other_features_during_crs)")
        else:
            notes.append(f"{', '.join(during)} collected during a CRS episode that has since resolved: listed, not "
                         "raising the level (in-house iec_hs_other_features_during_crs)")
    if ferritin_ok and (len(majors) >= 2 or hemophagocytosis):
        level = 3
    elif ferritin_ok and (majors or others_count):
        level = 2
    elif ferritin_ok or len(majors) >= 2:
        level = 1
    else:
        level = 0
    evidence.extend(majors)
    evidence.extend(others)
    if level == 0 and evidence:
        notes.append("below the in-house watch level: it needs the ferritin criterion or >= 2 major features")
    evidence.extend(notes)
    if ferritin_ok:
        criteria.append("ferritin")
    criteria.extend(e.split(" ", 1)[0].rstrip(":") for e in majors + others)

    if x.crs_active:
        label = "HLH-like features during active CRS"
    elif x.crs_seen:
        label = "IEC-HS after CRS resolution"
    else:
        label = "HLH-like features without CRS"
    if not x.crs_active and x.crs_after_onset is not None and level:
        evidence.append(x.crs_after_onset)
    return IecHsAssessment(level, label if level else "none", tuple(evidence), tuple(sorted(criteria)))
