"""Code tables of the input adapters: LOINC, SNOMED CT, RxNorm (FHIR R4 input contract,
docs/feeds.md) and IEEE 11073 MDC (HL7 v2 bedside vitals).

Only codes from those sources are listed; anything else is rejected by the adapters.
"""

from __future__ import annotations

from typing import Final

from models.vocabulary import OxygenDevice, VasoactiveAgent

LOINC: Final = "http://loinc.org"
SNOMED: Final = "http://snomed.info/sct"
RXNORM: Final = "http://www.nlm.nih.gov/research/umls/rxnorm"
UCUM: Final = "http://unitsofmeasure.org"

# What an Observation code means: ("vital", measure), ("lab", analyte), ("weight", ""),
# ("flow", ""), ("fio2", ""), ("method", "") or ("bp_panel", "").
Target = tuple[str, str]

# LOINC code -> (target, display used in reasons, accepted UCUM units). Contract: Observation table; counts
# also accept /uL (cells per microlitre, converted by models.units), which lab feeds send.
LOINC_CODES: Final[dict[str, tuple[Target, str, tuple[str, ...]]]] = {
    "8310-5": (("vital", "temperature"), "body temperature", ("Cel", "[degF]")),
    "8867-4": (("vital", "heart_rate"), "heart rate", ("/min",)),
    "85354-9": (("bp_panel", ""), "blood pressure panel", ()),
    "8480-6": (("vital", "sbp"), "systolic blood pressure", ("mm[Hg]",)),
    "8462-4": (("vital", "dbp"), "diastolic blood pressure", ("mm[Hg]",)),
    "8478-0": (("vital", "map"), "mean blood pressure", ("mm[Hg]",)),
    "59408-5": (("vital", "spo2"), "oxygen saturation by pulse oximetry", ("%",)),
    "2708-6": (("vital", "spo2"), "oxygen saturation", ("%",)),
    "9279-1": (("vital", "resp_rate"), "respiratory rate", ("/min",)),
    "3151-8": (("flow", ""), "inhaled oxygen flow rate", ("L/min",)),
    "19941-4": (("flow", ""), "inhaled oxygen flow rate", ("L/min",)),
    "3150-0": (("fio2", ""), "inhaled oxygen concentration", ("%",)),
    "107117-4": (("method", ""), "method of oxygen delivery", ()),
    "29463-7": (("weight", ""), "body weight", ("kg", "[lb_av]", "g")),
    "2276-4": (("lab", "ferritin"), "ferritin", ("ng/mL", "ug/L")),
    "1988-5": (("lab", "crp"), "C reactive protein", ("mg/L", "mg/dL")),
    "27415-9": (("lab", "ifn_gamma"), "interferon gamma", ("pg/mL",)),
    "26881-3": (("lab", "il6"), "interleukin 6", ("pg/mL",)),
    "76039-7": (("lab", "sil2r"), "soluble IL-2 receptor (mass)", ("pg/mL",)),
    "98115-9": (("lab", "cxcl9"), "CXCL9", ("pg/mL",)),
    "3255-7": (("lab", "fibrinogen"), "fibrinogen", ("mg/dL", "g/L")),
    "1742-6": (("lab", "alt"), "ALT", ("U/L",)),
    "1920-8": (("lab", "ast"), "AST", ("U/L",)),
    "2532-0": (("lab", "ldh"), "lactate dehydrogenase", ("U/L",)),
    "14804-9": (("lab", "ldh"), "lactate dehydrogenase", ("U/L",)),
    "2571-8": (("lab", "triglycerides"), "triglycerides", ("mg/dL", "mmol/L")),
    "1975-2": (("lab", "bilirubin"), "bilirubin, total", ("mg/dL",)),
    "777-3": (("lab", "platelets"), "platelets", ("10*3/uL", "10*9/L", "/uL")),
    "751-8": (("lab", "anc"), "neutrophils, absolute", ("10*3/uL", "10*9/L", "/uL")),
    "6690-2": (("lab", "wbc"), "leukocytes", ("10*3/uL", "10*9/L", "/uL")),
    "718-7": (("lab", "hemoglobin"), "hemoglobin", ("g/dL", "g/L")),
    "2160-0": (("lab", "creatinine"), "creatinine", ("mg/dL",)),
    "2524-7": (("lab", "lactate"), "lactate", ("mmol/L",)),
    "32693-4": (("lab", "lactate"), "lactate", ("mmol/L",)),
    "2518-9": (("lab", "lactate"), "lactate", ("mmol/L",)),
    "48065-7": (("lab", "d_dimer"), "D-dimer", ("ug/mL", "ng/mL")),
    "48066-5": (("lab", "d_dimer"), "D-dimer", ("ug/mL", "ng/mL")),
    # Contract extensions (docs/notes/feeds.md), each code's meaning checked against published
    # LOINC displays (FHIR specification, US Core and mCODE examples, LOINC-keyed lab maps):
    # the method-less "[#/volume] in Blood" counts of the CBC and the triglyceride code of the
    # FHIR specification's lipid profile example and triglyceride profile.
    "26464-8": (("lab", "wbc"), "leukocytes [#/volume] in blood", ("10*3/uL", "10*9/L")),
    "26515-7": (("lab", "platelets"), "platelets [#/volume] in blood", ("10*3/uL", "10*9/L")),
    "26499-4": (("lab", "anc"), "neutrophils [#/volume] in blood", ("10*3/uL", "10*9/L")),
    "35217-9": (("lab", "triglycerides"), "triglyceride in serum or plasma", ("mg/dL", "mmol/L")),
    "55284-4": (("bp_panel", ""), "blood pressure systolic and diastolic", ()),
}

# Components the contract allows inside a panel: BP panels (85354-9, 55284-4) and pulse oximetry
# (59408-5, also when 2708-6 is its first coding, as in US Core's pulse oximetry profile, whose
# components are the inhaled oxygen flow rate 3151-8 and concentration 3150-0), with the contract
# rule a rejected component is told.
_BP_PARTS: Final = frozenset({"8480-6", "8462-4", "8478-0"})
_OXIMETRY_PARTS: Final = frozenset({"3151-8", "19941-4", "3150-0"})
PANEL_COMPONENTS: Final[dict[str, frozenset[str]]] = {
    "85354-9": _BP_PARTS,
    "55284-4": _BP_PARTS,
    "59408-5": _OXIMETRY_PARTS,
    "2708-6": _OXIMETRY_PARTS,
}
_OXIMETRY_RULE: Final = ("only the inhaled oxygen flow rate 3151-8 (also 19941-4) and concentration 3150-0 are "
                         "components of pulse oximetry")
PANEL_RULE: Final[dict[str, str]] = {
    "85354-9": "the blood pressure panel 85354-9 has the components 8480-6 / 8462-4 / 8478-0",
    "55284-4": "the blood pressure panel 55284-4 has the components 8480-6 / 8462-4 / 8478-0",
    "59408-5": _OXIMETRY_RULE,
    "2708-6": _OXIMETRY_RULE,
}

# The LOINC code the export writes for each native measure or analyte (the first contract code).
LOINC_FOR: Final[dict[Target, str]] = {}
for _loinc, _row in LOINC_CODES.items():
    LOINC_FOR.setdefault(_row[0], _loinc)

# Method of oxygen delivery (SNOMED CT in 107117-4) -> device; the ASTCT class follows from the
# device (alerts.crs.oxygen_axis), as the contract's table gives it.
SNOMED_DEVICE: Final[dict[str, OxygenDevice]] = {
    "722742002": OxygenDevice.ROOM_AIR,
    "425478008": OxygenDevice.BLOW_BY,
    "336623009": OxygenDevice.NASAL_CANNULA,
    "371907003": OxygenDevice.NASAL_CANNULA,
    "426854004": OxygenDevice.HIGH_FLOW_NASAL_CANNULA,
    "870533002": OxygenDevice.HIGH_FLOW_NASAL_CANNULA,
    "1259025002": OxygenDevice.HIGH_FLOW_NASAL_CANNULA,
    "336602003": OxygenDevice.FACEMASK,
    "371908008": OxygenDevice.FACEMASK,
    "428285009": OxygenDevice.VENTURI,
    "465433006": OxygenDevice.VENTURI,
    "429253002": OxygenDevice.VENTURI,
    "427591007": OxygenDevice.NON_REBREATHER,
    "47545007": OxygenDevice.CPAP,
    "243142003": OxygenDevice.BIPAP,
    "1186618000": OxygenDevice.BIPAP,
    "428311008": OxygenDevice.BIPAP,
    "447837008": OxygenDevice.BIPAP,
    "1258985005": OxygenDevice.INVASIVE_VENTILATION,
    "40617009": OxygenDevice.INVASIVE_VENTILATION,
    "112798008": OxygenDevice.INVASIVE_VENTILATION,
}
SNOMED_FOR_DEVICE: Final[dict[OxygenDevice, str]] = {}
for _sct, _device in SNOMED_DEVICE.items():
    SNOMED_FOR_DEVICE.setdefault(_device, _sct)

# Reasons (MedicationAdministration.reasonCode) coded in SNOMED CT -> the term the reason rule reads
# (models.vocabulary.counts_for_crs; the words of alerts.config.Thresholds.non_crs_causes). A coded
# reason is preferred to the free text beside it, which is the fallback; an unknown code is kept as
# it is and counts toward CRS (the contract: only a reason that is explicitly not CRS excludes).
# Concept ids checked against public SNOMED CT code tables (OHDSI ICD-9-CM to SNOMED maps for the
# shocks, clinical quality-measure code sets for LV systolic dysfunction), except where marked [U].
SNOMED_REASONS: Final[dict[str, str]] = {
    "91302008": "sepsis",
    "76571007": "septic shock",
    "89138009": "cardiogenic shock",
    "5758002": "bacteremia",
    "233604007": "pneumonia",
    "78275009": "obstructive sleep apnea",
    "84114007": "heart failure",
    "134401001": "left ventricular systolic dysfunction",
    # [U] cytokine release syndrome, a US-extension id (namespace 1000124) that could not be checked
    # here. Harmless if wrong: a reason naming CRS counts, and so does an unknown code.
    "442891000124101": "cytokine release syndrome",
}

# RxNorm ingredient -> generic name (contract: MedicationAdministration table).
RXNORM_DRUGS: Final[dict[str, str]] = {
    "7512": "norepinephrine",
    "3992": "epinephrine",
    "8163": "phenylephrine",
    "3628": "dopamine",
    "11149": "vasopressin",
    "3616": "dobutamine",
    "52769": "milrinone",
    "612865": "tocilizumab",
    "1535218": "siltuximab",
    "3264": "dexamethasone",
    "6902": "methylprednisolone",
    "5492": "hydrocortisone",
    "72435": "anakinra",
    "1193326": "ruxolitinib",
    "2104604": "emapalumab",
    "4179": "etoposide",
    "161": "acetaminophen",
    "1986438": "tisagenlecleucel",
    "2479136": "lisocabtagene maraleucel",
    "2536430": "idecabtagene vicleucel",
    "2594775": "ciltacabtagene autoleucel",
    "2387277": "brexucabtagene autoleucel",
    "2698195": "obecabtagene autoleucel",
}
RXNORM_FOR: Final[dict[str, str]] = {name: code for code, name in RXNORM_DRUGS.items()}

# Infusions (vasoactive agents) by generic name, including those the contract recognises by name only.
VASOACTIVE_NAMES: Final[dict[str, VasoactiveAgent]] = {
    "norepinephrine": VasoactiveAgent.NOREPINEPHRINE,
    "epinephrine": VasoactiveAgent.EPINEPHRINE,
    "phenylephrine": VasoactiveAgent.PHENYLEPHRINE,
    "dopamine": VasoactiveAgent.DOPAMINE,
    "vasopressin": VasoactiveAgent.VASOPRESSIN,
    "angiotensin ii": VasoactiveAgent.ANGIOTENSIN_II,
    "metaraminol": VasoactiveAgent.METARAMINOL,
    "dobutamine": VasoactiveAgent.DOBUTAMINE,
    "milrinone": VasoactiveAgent.MILRINONE,
}
AGENT_NAME: Final[dict[VasoactiveAgent, str]] = {a: n for n, a in VASOACTIVE_NAMES.items()}

# Drugs given as doses, by generic name (the contract table; axicabtagene ciloleucel by name).
DOSE_NAMES: Final[frozenset[str]] = frozenset(
    {n for n in RXNORM_DRUGS.values() if n not in VASOACTIVE_NAMES} | {"axicabtagene ciloleucel"}
)
# Generic names as the contract's table writes them where that differs from the name used here.
NAME_AS_WRITTEN: Final[dict[str, str]] = {"vasopressin (USP)": "vasopressin"}


def name_key(name: str) -> str:
    """A drug name compared case- and space-insensitively (contract: the generic name, case-insensitive)."""
    return "".join(name.lower().split())


# name_key of every generic name the contract recognises -> the generic name used here.
GENERIC_NAMES: Final[dict[str, str]] = {
    **{name_key(n): n for n in (*VASOACTIVE_NAMES, *DOSE_NAMES)},
    **{name_key(written): n for written, n in NAME_AS_WRITTEN.items()},
}
# "any product named as a CAR-T cell product" (contract): a name containing one of these.
CAR_T_PRODUCT_NAMES: Final[tuple[str, ...]] = ("car-t cell product", "car t cell product")

# IEEE 11073-10101 (MDC) codes that monitor gateways send in OBX-3 (IHE PCD-01), -> native measure.
# Codes and reference ids as listed in HL7 Denmark's DK Core value set IEEEBasicObservation
# (non-invasive BP, heart rate, SpO2, respiratory rate, body temperature by site), and the
# arterial-line BP codes 150033-150035 as in vendor PCD-01 interface manuals (GE B40/B105/B125
# HL7 reference manual 2062665-001, PCD-01 examples). The invasive arterial pressure (ABP)
# codes 150037-150039 and the site-unspecified temperature MDC_TEMP 150344 (a monitor's
# temperature channels T1, T2, ...) as in Mindray's HL7 interface parameter tables (blood
# pressure and temperature tables, transcribed in public gateway code) and in public PCD-01
# gateway examples pairing each code with its reference id; they follow the 10101 layout
# (partition 2 x 65536 + term code; SYS/DIA/MEAN = base + 1/2/3, e.g. MDC_PRESS_BLD_NONINV
# 150020 -> 150021-150023 in the HL7 PHD IG). Pulse rate (MDC_PULS_*) is not heart rate; skin,
# room and airway temperature are not body temperature: all rejected. Pulse rate is read as
# a stand-in for heart rate, marked (below).
MDC_CODES: Final[dict[str, tuple[str, str]]] = {
    "147842": ("heart_rate", "MDC_ECG_HEART_RATE"),
    "150021": ("sbp", "MDC_PRESS_BLD_NONINV_SYS"),
    "150022": ("dbp", "MDC_PRESS_BLD_NONINV_DIA"),
    "150023": ("map", "MDC_PRESS_BLD_NONINV_MEAN"),
    "150033": ("sbp", "MDC_PRESS_BLD_ART_SYS"),
    "150034": ("dbp", "MDC_PRESS_BLD_ART_DIA"),
    "150035": ("map", "MDC_PRESS_BLD_ART_MEAN"),
    "150037": ("sbp", "MDC_PRESS_BLD_ART_ABP_SYS"),
    "150038": ("dbp", "MDC_PRESS_BLD_ART_ABP_DIA"),
    "150039": ("map", "MDC_PRESS_BLD_ART_ABP_MEAN"),
    # Cuff (non-invasive) pressure as many PCD-01 gateways send it, codes with their reference ids as
    # in public monitor ORU^R01 samples (`150301^MDC_PRESS_CUFF_SYS^MDC|1.1.9.150301`, ...).
    "150301": ("sbp", "MDC_PRESS_CUFF_SYS"),
    "150302": ("dbp", "MDC_PRESS_CUFF_DIA"),
    "150303": ("map", "MDC_PRESS_CUFF_MEAN"),
    # Pulse rate (SpO2 plethysmogram, NIBP cuff), codes with their reference ids as in public PCD-01
    # samples. Not heart rate: used as heart rate only when the message has no ECG heart rate of
    # the same time, and then marked as pulse (streams.feeds.hl7v2).
    "149530": ("pulse_rate", "MDC_PULS_OXIM_PULS_RATE"),
    "149546": ("pulse_rate", "MDC_PULS_RATE_NON_INV"),
    "150456": ("spo2", "MDC_PULS_OXIM_SAT_O2"),
    "150324": ("spo2", "MDC_SAT_O2_ART"),
    "151562": ("resp_rate", "MDC_RESP_RATE"),
    "151570": ("resp_rate", "MDC_AWAY_RESP_RATE"),
    "151578": ("resp_rate", "MDC_TTHOR_RESP_RATE"),
    "151594": ("resp_rate", "MDC_CO2_RESP_RATE"),
    "150364": ("temperature", "MDC_TEMP_BODY"),
    "150368": ("temperature", "MDC_TEMP_CORE"),
    "150392": ("temperature", "MDC_TEMP_TYMP"),
    "188420": ("temperature", "MDC_TEMP_RECT"),
    "188424": ("temperature", "MDC_TEMP_ORAL"),
    "188428": ("temperature", "MDC_TEMP_EAR"),
    "188452": ("temperature", "MDC_TEMP_AXILLA"),
    "150344": ("temperature", "MDC_TEMP"),
}
MDC_BY_REFID: Final[dict[str, str]] = {refid: code for code, (_, refid) in MDC_CODES.items()}
MDC_FOR_MEASURE: Final[dict[str, str]] = {}
for _mdc, _entry in MDC_CODES.items():
    MDC_FOR_MEASURE.setdefault(_entry[0], _mdc)

# MDC units (OBX-6) by reference id -> UCUM.
MDC_UNITS: Final[dict[str, str]] = {
    "MDC_DIM_BEAT_PER_MIN": "/min",
    "MDC_DIM_RESP_PER_MIN": "/min",
    "MDC_DIM_MMHG": "mm[Hg]",
    "MDC_DIM_PERCENT": "%",
    "MDC_DIM_DEGC": "Cel",
    "MDC_DIM_FAHR": "[degF]",
}
# MDC units by numeric code (sent alone, e.g. `264864^^MDC`) -> reference id: partition 4
# (dimensions) x 65536 + the term code of IEEE 11073-20601's nomenclature as in signove/antidote
# src/dim/nomenclature.h (MDC_DIM_PERCENT 544, _BEAT_PER_MIN 2720, _RESP_PER_MIN 2784, _MMHG 3872,
# _DEGC 6048); 264864 and 266016 also appear with their reference ids in the GE B40 HL7 manual's
# PCD-01 examples. Fahrenheit is left out: its numeric code differs between sources (266560, 268224).
MDC_UNIT_CODES: Final[dict[str, str]] = {
    "262688": "MDC_DIM_PERCENT",
    "264864": "MDC_DIM_BEAT_PER_MIN",
    "264928": "MDC_DIM_RESP_PER_MIN",
    "266016": "MDC_DIM_MMHG",
    "268192": "MDC_DIM_DEGC",
}
# UCUM annotations (in braces) carry no meaning: these are `/min` (HL7 v2 and, as a contract
# extension, FHIR: US Core and many EHRs send `{beats}/min`).
UCUM_ANNOTATED_PER_MIN: Final[frozenset[str]] = frozenset({"{beat}/min", "{beats}/min", "{breath}/min",
                                                            "{breaths}/min"})
# HL7 v2 OBX-6 unit spellings that are not UCUM but name one unit without doubt -> UCUM. `bpm`
# (beats or breaths per minute) is `/min` either way. Feed layer only: models.units is not touched.
HL7_UNIT_ALIASES: Final[dict[str, str]] = {"mmHg": "mm[Hg]", "bpm": "/min", "degF": "[degF]", "degC": "Cel"}

# FHIR R4 resource types that crswatch does not monitor: a Bundle or an export carries them
# (Patient, Encounter, Claim, ...); they are "skipped, not monitored" (ignored, counted), not
# rejected. Any other resourceType is not FHIR R4 and is rejected. The R4B resource list (as
# fhir.resources R4B models it) plus the R4 types R4B removed.
FHIR_NOT_MONITORED: Final[frozenset[str]] = frozenset("""
Account ActivityDefinition AdministrableProductDefinition AdverseEvent AllergyIntolerance Appointment
AppointmentResponse AuditEvent Binary BiologicallyDerivedProduct BodyStructure CapabilityStatement CarePlan
CareTeam CatalogEntry ChargeItem ChargeItemDefinition Citation Claim ClaimResponse ClinicalImpression
ClinicalUseDefinition CodeSystem Communication CommunicationRequest CompartmentDefinition Composition ConceptMap
Condition Consent Contract Coverage CoverageEligibilityRequest CoverageEligibilityResponse DetectedIssue Device
DeviceDefinition DeviceMetric DeviceRequest DeviceUseStatement DiagnosticReport DocumentManifest DocumentReference
Encounter Endpoint EnrollmentRequest EnrollmentResponse EpisodeOfCare EventDefinition Evidence EvidenceReport
EvidenceVariable ExampleScenario ExplanationOfBenefit FamilyMemberHistory Flag Goal GraphDefinition Group
GuidanceResponse HealthcareService ImagingStudy Immunization ImmunizationEvaluation ImmunizationRecommendation
ImplementationGuide Ingredient InsurancePlan Invoice Library Linkage List Location ManufacturedItemDefinition
Measure MeasureReport Media Medication MedicationDispense MedicationKnowledge MedicationRequest
MedicationStatement MedicinalProductDefinition MessageDefinition MessageHeader MolecularSequence NamingSystem
NutritionOrder NutritionProduct ObservationDefinition OperationDefinition OperationOutcome Organization
OrganizationAffiliation PackagedProductDefinition Parameters Patient PaymentNotice PaymentReconciliation Person
PlanDefinition Practitioner PractitionerRole Procedure Provenance Questionnaire QuestionnaireResponse
RegulatedAuthorization RelatedPerson RequestGroup ResearchDefinition ResearchElementDefinition ResearchStudy
ResearchSubject RiskAssessment Schedule SearchParameter ServiceRequest Slot Specimen SpecimenDefinition
StructureDefinition StructureMap Subscription SubscriptionStatus SubscriptionTopic Substance SubstanceDefinition
SupplyDelivery SupplyRequest Task TerminologyCapabilities TestReport TestScript ValueSet VerificationResult
VisionPrescription
EffectEvidenceSynthesis MedicinalProduct MedicinalProductAuthorization MedicinalProductContraindication
MedicinalProductIndication MedicinalProductIngredient MedicinalProductInteraction MedicinalProductManufactured
MedicinalProductPackaged MedicinalProductPharmaceutical MedicinalProductUndesirableEffect RiskEvidenceSynthesis
SubstanceNucleicAcid SubstancePolymer SubstanceProtein SubstanceReferenceInformation SubstanceSourceMaterial
SubstanceSpecification
""".split())
