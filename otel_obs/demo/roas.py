"""A small, deterministic return-on-ad-spend model and the results it is judged against.

The prediction is a platform baseline scaled by budget and audience tier. The "observed"
result is the same baseline with a campaign-specific deviation drawn from the campaign id,
so each prediction has a known, repeatable error for the accuracy KPIs.
"""

from __future__ import annotations

import hashlib
import math
import time
from dataclasses import dataclass

MODEL_NAME = "roas-linear-v1"

_PLATFORM_BASELINE = {
    "meta": 3.1,
    "google": 3.6,
    "tiktok": 2.4,
    "linkedin": 1.9,
    "snapchat": 2.0,
    "pinterest": 2.7,
    "x": 1.6,
    "amazon": 4.2,
}
_TIER_FACTOR = {"free": 0.8, "starter": 0.95, "pro": 1.05, "enterprise": 1.15}

# Large enterprise budgets run the full simulation, which is slow on purpose.
SLOW_BUDGET_USD = 4000.0
SLOW_SECONDS = 0.35


@dataclass(frozen=True)
class Prediction:
    campaign_id: str
    predicted_roas: float
    observed_roas: float
    spend_usd: float
    revenue_usd: float

    @property
    def error(self) -> float:
        return abs(self.predicted_roas - self.observed_roas)


def _unit(text: str) -> float:
    """A number in [0, 1) drawn from ``text``: the same text always gives the same number."""
    return int(hashlib.sha256(text.encode()).hexdigest()[:12], 16) / float(16**12)


def predict(campaign_id: str, platform: str, tier: str, daily_budget: float) -> float:
    baseline = _PLATFORM_BASELINE.get(platform, 2.5) * _TIER_FACTOR.get(tier, 1.0)
    # Diminishing returns: each tenfold budget above 100 USD/day lowers ROAS by 8 %.
    scale = 1.0 - 0.08 * math.log10(max(daily_budget, 1.0) / 100.0)
    return round(max(baseline * scale, 0.05), 4)


def observe(campaign_id: str, predicted: float) -> float:
    """The ROAS the campaign actually achieved: within ±35 % of the prediction."""
    deviation = (_unit(campaign_id) - 0.5) * 0.7
    return round(max(predicted * (1.0 + deviation), 0.01), 4)


def evaluate(campaign_id: str, platform: str, tier: str, daily_budget: float) -> Prediction:
    if tier == "enterprise" and daily_budget >= SLOW_BUDGET_USD:
        time.sleep(SLOW_SECONDS)
    predicted = predict(campaign_id, platform, tier, daily_budget)
    observed = observe(campaign_id, predicted)
    return Prediction(
        campaign_id=campaign_id,
        predicted_roas=predicted,
        observed_roas=observed,
        spend_usd=daily_budget,
        revenue_usd=round(daily_budget * observed, 2),
    )
