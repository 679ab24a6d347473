"""Every clinical threshold and window, with its source.

This is the one config file for thresholds. Each field's description says where the
number comes from: a published source and its verification mark (docs/clinical-rules.md) or
"IN-HOUSE DEFAULT" where no published source gives a number. Sites override values
with a TOML/JSON file (`crswatch replay --config FILE`); nothing here reads files.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from models.vocabulary import NON_CRS_CAUSES


class Thresholds(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    # --- ASTCT CRS grading (Lee et al. 2019) ---
    fever_c: float = Field(38.0, description="ASTCT 2019: fever is temperature >= 38 degC [V2] (Lee et al. 2019).")
    fever_window_hours: float = Field(
        24.0,
        description="IN-HOUSE DEFAULT: a fever (>= fever_c, or documented) counts as current for this long after the "
        "last such reading; ASTCT gives no duration. Measured normal temperatures in between do not end it "
        "(hysteresis: readings around 38.0 degC must not open and close CRS episodes); a documented 'afebrile' "
        "ends it at once.",
    )
    hypotension_sbp_below: float = Field(
        90.0,
        description="IN-HOUSE DEFAULT taken from the PMC8021214 adaptation 'Hypotension (SBP <90 mm Hg)'; whether "
        "Lee 2019 defines a number is UNVERIFIED [U]. Adults; children need age-adjusted values.",
    )
    hypotension_stale_hours: float = Field(
        24.0,
        description="IN-HOUSE DEFAULT: the latest blood pressure (or documented hypotension) decides the hypotension "
        "axis for this long; older readings no longer count.",
    )
    hypotension_map_below: float | None = Field(
        65.0,
        description="IN-HOUSE DEFAULT: a mean arterial pressure below this (mmHg) is hypotension too, beside "
        "SBP < hypotension_sbp_below; ASTCT 2019 gives no MAP criterion. 65 mmHg is the usual bedside MAP target "
        "of critical care. The measured MAP is used; without one, MAP = DBP + (SBP - DBP) / 3 when the same "
        "reading gives SBP and DBP. null turns the criterion off.",
    )
    fluid_bolus_hold_hours: float = Field(
        6.0,
        description="IN-HOUSE DEFAULT: hypotension treated with a fluid bolus (a dose of class fluid_bolus within "
        "fluid_bolus_link_hours of a hypotensive reading, reason not a non-CRS cause) is still ASTCT 'hypotension "
        "not requiring vasopressors' (grade 2) for this long after the bolus, whatever the readings: the bolus "
        "made them normal. A new hypotensive reading needs no hold.",
    )
    fluid_bolus_link_hours: float = Field(
        1.0,
        description="IN-HOUSE DEFAULT: a fluid bolus is taken as given for hypotension when it is charted at most "
        "this long before or after a hypotensive reading (charting order of the two does not matter).",
    )
    low_flow_max_l_min: float = Field(
        6.0, description="ASTCT 2019: low-flow nasal cannula is <= 6 L/min, high-flow > 6 L/min [V2] (Lee et al. 2019)."
    )
    fever_masking_drugs: tuple[str, ...] = Field(
        ("il6r_blockade", "corticosteroid"),
        description="ASTCT 2019 footnote: after tocilizumab or steroids fever is no longer required [V2], "
        "(Lee et al. 2019; drug classes from models.vocabulary.DrugClass).",
    )
    non_crs_causes: tuple[str, ...] = Field(
        NON_CRS_CAUSES,
        description="IN-HOUSE DEFAULT list (models.vocabulary.NON_CRS_CAUSES): a reason that affirms one of these "
        "causes (whole words, case-insensitive; not negated or in doubt: 'not septic', 'rule out sepsis') keeps "
        "support or a dose off the CRS grade, unless the reason also names CRS. The FHIR R4 input contract gives "
        "cardiogenic shock, sepsis, diuresis and sedation as examples of 'explicitly not CRS' and counts any other "
        "reason; a reason that only says 'not CRS' always excludes. FHIR reasonCode codings in SNOMED CT are read "
        "as the terms of streams.feeds.terminology.SNOMED_REASONS before any free text.",
    )

    @field_validator("non_crs_causes")
    @classmethod
    def _causes_are_words(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        if any(not c.strip() for c in v):
            raise ValueError("non_crs_causes: an empty entry would match every reason")
        return tuple(" ".join(c.lower().split()) for c in v)
    fever_masking_hours: float = Field(
        168.0,
        description="IN-HOUSE DEFAULT: how long after a tocilizumab or corticosteroid dose the fever requirement "
        "stays waived; ASTCT gives no duration. Within the treated episode the grade is firm; in a later episode "
        "(the drug masks fever whatever the episode bookkeeping) it is graded and flagged uncertain.",
    )
    masking_onset_window_hours: float = Field(
        6.0,
        description="IN-HOUSE DEFAULT: a masking dose given up to this long before the onset of a CRS episode was "
        "given for it (charting lag between the first sign and the dose; same-instant events in any order). ASTCT "
        "2019 (Lee et al.) says only 'once tocilizumab or steroids are given'. A dose whose reason names CRS arms "
        "the episode it was given for at any time after the previous episode ended.",
    )
    infection_window_hours: float = Field(
        168.0,
        description="IN-HOUSE DEFAULT: a documented infection (finding 'infection', present) makes a CRS episode "
        "that opens within this long after it uncertain and unpaged (ASTCT 2019 Lee et al.: fever must not be "
        "attributable to any other cause); a finding of 'infection' absent, or an attribution to CRS, ends it "
        "sooner. Roughly the first week of treatment of a bloodstream infection.",
    )
    infection_unpaged_max_grade: int = Field(
        2,
        description="IN-HOUSE DEFAULT: while a documented infection may explain the signs, a CRS grade up to this "
        "is recorded (uncertain) but not paged; a higher grade pages, still flagged uncertain: a missed grade 3-4 "
        "CRS is the worse error, and sepsis and CRS coexist.",
    )

    # --- ICANS (ASTCT 2019, Lee et al.): how long a domain's finding holds ---
    icans_ice_hold_hours: float = Field(
        0.0,
        description="IN-HOUSE DEFAULT: the ICE score is a point-in-time test: the next ICE score replaces it at "
        "once (hold 0). It is never replaced by an assessment of another domain.",
    )
    icans_consciousness_hold_hours: float = Field(
        0.0,
        description="IN-HOUSE DEFAULT: the level of consciousness describes the moment it was assessed: the next "
        "assessment of consciousness replaces it at once (hold 0).",
    )
    icans_seizure_hold_hours: float = Field(
        24.0,
        description="IN-HOUSE DEFAULT: a clinical or EEG seizure that resolved rapidly (ASTCT grade 3) sets the "
        "seizure domain for this long after it, whatever later assessments say ('no seizure' says only that none "
        "is happening now; post-ictal state and early recurrence), and no longer after it.",
    )
    icans_status_epilepticus_hold_hours: float = Field(
        24.0,
        description="IN-HOUSE DEFAULT: a prolonged (> 5 min) or repetitive seizure (ASTCT grade 4) sets the "
        "seizure domain for this long after it: it does not resolve in minutes (an EEG 'no seizure' 20 min later "
        "does not end it). Keep it >= icans_seizure_hold_hours.",
    )
    icans_motor_hold_hours: float = Field(
        24.0,
        description="IN-HOUSE DEFAULT: deep focal motor weakness (hemiparesis, paraparesis; ASTCT grade 4) is "
        "not taken as resolved by an examination less than this long after it; a later examination clears it.",
    )
    icans_edema_hold_hours: float = Field(
        24.0,
        description="IN-HOUSE DEFAULT: cerebral edema / raised ICP (ASTCT grade 3 focal, grade 4 diffuse) does "
        "not resolve in minutes: a report of less or no edema sooner than this after it does not lower the "
        "domain; a later one does. Until then the finding holds through assessments of other domains.",
    )

    @model_validator(mode="after")
    def _holds(self) -> Thresholds:
        # alerts.icans keeps an earlier seizure only while no later one of at least its grade covers it.
        if self.icans_status_epilepticus_hold_hours < self.icans_seizure_hold_hours:
            raise ValueError("icans_status_epilepticus_hold_hours must be >= icans_seizure_hold_hours")
        return self

    # --- Refractory CRS ---
    refractory_min_grade: int = Field(
        3,
        description="IN-HOUSE DEFAULT: grade that must persist after IL-6 blockade and steroids to call CRS "
        "refractory.",
    )
    refractory_hours: float = Field(
        24.0,
        description="IN-HOUSE DEFAULT: hours the grade must persist after both tocilizumab (or siltuximab) and a "
        "corticosteroid were given in the episode. No published number (docs/clinical-rules.md).",
    )

    # --- Vasopressors (Goradia 2021) ---
    nee_rise_ug_kg_min: float = Field(
        0.1,
        description="IN-HOUSE DEFAULT (escalation events are design choices, not published thresholds): alert when the "
        "norepinephrine-equivalent dose rises by this much above the course's lowest computable value.",
    )

    # --- Ferritin and IEC-HS (Hines 2023 [U], CARTOX, HLH-2004) ---
    ferritin_uln_ng_ml: float = Field(
        400.0,
        description="IN-HOUSE DEFAULT: ferritin upper limit of normal; lab- and sex-specific, set it per site. Used "
        "for IEC-HS '>2x ULN' when no baseline is known.",
    )
    ferritin_fold_over_reference: float = Field(
        2.0, description="IEC-HS: ferritin > 2x ULN or > 2x baseline at infusion [U] (Hines et al. 2023)."
    )
    ferritin_high_ng_ml: float = Field(
        10000.0,
        description="CARTOX carHLH: peak ferritin > 10,000 ng/mL [V2] (Neelapu 2018); 'almost confirmatory' "
        "of HLH [V2] in a secondary source.",
    )
    ferritin_rise_ratio: float = Field(
        1.5,
        description="IN-HOUSE DEFAULT, labelled as such: 'rapidly rising' ferritin = the newest value at least this "
        "many times the lowest value collected in the window before it. No published rate exists.",
    )
    ferritin_rise_window_hours: float = Field(
        48.0,
        description="IN-HOUSE DEFAULT: the rapid-rise rule compares the newest ferritin with the lowest value "
        "collected at most this long before it (not only the previous value: a re-sent or a higher later value keeps "
        "the rise).",
    )
    ferritin_rise_floor_fold_uln: float = Field(
        1.0,
        description="IN-HOUSE DEFAULT: a rise counts as 'rapidly rising' only when the newest ferritin is above this "
        "many times ferritin_uln_ng_ml (1 x 400 = 400 ng/mL by default): a rise inside the normal range "
        "(110 -> 180 ng/mL) is not hyperferritinemia. Hines 2023 gives no number [U].",
    )
    cytopenia_nadir_days: int = Field(
        14,
        description="IN-HOUSE DEFAULT: blood counts collected before the end of this Day after infusion (local "
        "calendar day; pre-infusion counts included) are read as the expected post-lymphodepletion nadir, not as "
        "the 'new, worsening or refractory' cytopenias of IEC-HS [U]; a clinician-documented pancytopenia still "
        "counts. "
        "Without a known Day 0 the rule cannot be applied and counts are judged against the baseline only.",
    )
    iec_hs_other_features_during_crs: bool = Field(
        False,
        description="IN-HOUSE DEFAULT: while CRS is active, the 'other' IEC-HS manifestations (LDH, triglycerides, "
        "splenomegaly) are listed but do not lift the ferritin criterion to 'suspected' (CRS itself raises ferritin "
        "and LDH); a major feature is needed. After CRS resolved, LDH and triglycerides count only when collected "
        "after the resolution. True: they always count (the behaviour before issue 15).",
    )
    fibrinogen_low_mg_dl: float = Field(
        150.0,
        description="Hypofibrinogenemia < 150 mg/dL: HLH-2004 (<=1.5 g/L) [V2]; IEC-HS wording [U], "
        "Henter 2007, Hines et al. 2023.",
    )
    triglycerides_high_mg_dl: float = Field(
        265.0, description="Fasting triglycerides > 265 mg/dL: IEC-HS other manifestation [U]; HLH-2004 >= 265 [V2]."
    )
    transaminase_fold_uln: float = Field(
        5.0, description="IEC-HS transaminitis > 5x ULN, recalled [U] (Hines et al. 2023)."
    )
    alt_uln_u_l: float = Field(40.0, description="IN-HOUSE DEFAULT: ALT upper limit of normal; set per site.")
    ast_uln_u_l: float = Field(40.0, description="IN-HOUSE DEFAULT: AST upper limit of normal; set per site.")
    ldh_uln_u_l: float = Field(250.0, description="IN-HOUSE DEFAULT: LDH upper limit of normal; set per site.")
    hemoglobin_low_g_dl: float = Field(9.0, description="HLH-2004 cytopenia: Hb < 90 g/L [V2] (Henter 2007).")
    platelets_low_10e9_l: float = Field(100.0, description="HLH-2004 cytopenia: platelets < 100 x10^9/L [V2].")
    anc_low_10e9_l: float = Field(1.0, description="HLH-2004 cytopenia: neutrophils < 1.0 x10^9/L [V2].")
    lab_valid_hours: float = Field(
        168.0,
        description="IN-HOUSE DEFAULT: a lab value or documented lab-type finding counts toward IEC-HS for this long "
        "after collection unless a newer value replaces it; missing follow-up labs should not clear a suspicion "
        "within days.",
    )
    crp_ferritin_window_hours: float = Field(
        72.0,
        description="IN-HOUSE DEFAULT: CRP falling while ferritin rises after IL-6 blockade (McNerney 2022, Day +9) "
        "compares consecutive values at most this far apart.",
    )

    # --- Event time ---
    lateness_minutes: float = Field(
        240.0,
        description="IN-HOUSE DEFAULT: events up to this much older than the newest event of the patient are applied "
        "in event-time order (earlier grades and alerts corrected explicitly); older ones are applied at arrival "
        "and marked late. Sized for typical lab turnaround and the 64 KB state budget with minute vitals.",
    )


DEFAULT_THRESHOLDS = Thresholds()
