"""Vasopressor burden: running agents and the norepinephrine-equivalent dose (NEE).

Goradia et al., J Crit Care 2021;61:233-240 ([V2] via MIT-LCP mimic-code):
NEE (ug/kg/min) = NE + EPI + PE/10 + DOPA/100 + METARAMINOL/8
                  + VASOPRESSIN[U/min] x 2.5 + ANGII[ug/kg/min] x 10
Kotani 2023 coefficients are unverified and deliberately not used (docs/clinical-rules.md).
NE salt-versus-base convention is site-specific; doses are taken as charted.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from models.units import rate_in_ug_kg_min, rate_in_units_per_min
from models.vocabulary import VASOACTIVE_ROLE, VasoactiveAgent, VasoactiveRole

# Multiplier applied to the agent's dose in ug/kg/min (vasopressin: U/min).
GORADIA_FACTOR: dict[VasoactiveAgent, float] = {
    VasoactiveAgent.NOREPINEPHRINE: 1.0,
    VasoactiveAgent.EPINEPHRINE: 1.0,
    VasoactiveAgent.PHENYLEPHRINE: 1.0 / 10.0,
    VasoactiveAgent.DOPAMINE: 1.0 / 100.0,
    VasoactiveAgent.METARAMINOL: 1.0 / 8.0,
    VasoactiveAgent.VASOPRESSIN: 2.5,
    VasoactiveAgent.ANGIOTENSIN_II: 10.0,
}


@dataclass(frozen=True, slots=True)
class RunningAgent:
    agent: VasoactiveAgent
    rate: float | None
    unit: str | None


@dataclass(frozen=True, slots=True)
class NeeResult:
    nee_ug_kg_min: float | None
    why_not: str | None  # why it cannot be computed
    terms: tuple[str, ...]


def nee(agents: Iterable[RunningAgent], weight_kg: float | None) -> NeeResult:
    total = 0.0
    terms: list[str] = []
    missing: list[str] = []
    for a in agents:
        if VASOACTIVE_ROLE[a.agent] is VasoactiveRole.INOTROPE:
            continue
        factor = GORADIA_FACTOR[a.agent]
        if a.rate is None or a.unit is None:
            missing.append(f"{a.agent.value} dose not charted")
            continue
        if a.agent is VasoactiveAgent.VASOPRESSIN:
            dose = rate_in_units_per_min(a.rate, a.unit)
        else:
            dose = rate_in_ug_kg_min(a.rate, a.unit, weight_kg)
        if dose is None:
            why = "no weight" if a.unit == "ug/min" else f"unit {a.unit}"
            missing.append(f"{a.agent.value} {a.rate:g} {a.unit} cannot be converted ({why})")
            continue
        total += dose * factor
        unit = "U/min" if a.agent is VasoactiveAgent.VASOPRESSIN else "ug/kg/min"
        terms.append(f"{a.agent.value} {dose:.3g} {unit} x {factor:g}")
    if missing:
        return NeeResult(None, "; ".join(missing), tuple(terms))
    return NeeResult(total, None, tuple(terms))
