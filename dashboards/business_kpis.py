"""Business KPIs of the ad platform, from ``otel_obs.business.AdPlatformKPIs``."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as db

from dashboards.common import (
    about,
    add_rows,
    bars,
    graph,
    increase_sum,
    links,
    new_dashboard,
    per_hour,
    quantile,
    ranking,
    rate_sum,
    ratio,
    sel,
    single,
    target,
)

UID = "otel-obs-business-kpis"
CAMPAIGNS = "adplatform_campaigns_created_total"
ADS = "adplatform_ads_published_total"
VIDEOS = "adplatform_video_generations_total"
VIDEO_DURATION = "adplatform_video_generation_duration_seconds"
SPEND = "adplatform_ad_spend_USD_total"
REVENUE = "adplatform_revenue_USD_total"
ROAS = "adplatform_roas"
ERROR = "adplatform_prediction_error"
MAE = "adplatform_prediction_mae_ratio"
R2 = "adplatform_prediction_r2_ratio"
TOP = "adplatform_campaign_top_revenue_USD"
USERS = "adplatform_users_active"

# ROAS is a multiple of the ad spend: "3.2x".
MULTIPLE = "suffix:x"
VIDEO_FAILED = 'status!="succeeded"'

ABOUT = """\
**How is the ad platform doing?** Campaigns created, ads published per platform, video
generations and their failures, revenue and return on ad spend (ROAS), the top campaigns,
how accurate the ROAS predictions are (MAE and R²) and how many users are active. Figures
come from `otel_obs.business.AdPlatformKPIs`; a series link opens the traces and logs of
the services that recorded it.
"""


def overview() -> list[object]:
    return [
        about(ABOUT),
        single(
            "Revenue in the time range",
            "Revenue attributed to campaigns over the dashboard's time range, US dollars.",
            "currencyUSD",
            increase_sum(REVENUE, window="$__range"),
            links(),
        ),
        single(
            "ROAS in the time range",
            "Revenue divided by ad spend over the time range, all platforms.",
            MULTIPLE,
            ratio(increase_sum(REVENUE, window="$__range"), increase_sum(SPEND, window="$__range")),
            links(),
        ),
        single(
            "Active users",
            "Users active on the platform now (the largest value any instance reports).",
            "short",
            f"max({USERS}{sel()})",
            links(),
        ),
        single(
            "Campaigns created in the time range",
            "New campaigns over the dashboard's time range.",
            "short",
            increase_sum(CAMPAIGNS, window="$__range"),
            links(),
        ),
        single(
            "Ads published in the time range",
            "Ads published to any platform over the dashboard's time range.",
            "short",
            increase_sum(ADS, window="$__range"),
            links(),
        ),
        single(
            "Video failure ratio",
            "Share of video generations that did not succeed, over the time range.",
            "percentunit",
            ratio(
                increase_sum(VIDEOS, extra=VIDEO_FAILED, window="$__range"),
                increase_sum(VIDEOS, window="$__range"),
            ),
            links("status = error"),
        ),
    ]


def campaigns_and_ads() -> list[object]:
    return [
        graph(
            "Campaigns created per hour by platform",
            "New campaigns per hour, by advertising platform.",
            "short",
            [target(per_hour(rate_sum(CAMPAIGNS, ("platform",))), "{{platform}}")],
            links(),
            stacked=True,
        ),
        graph(
            "Campaigns created per hour by tier",
            "New campaigns per hour, by customer tier.",
            "short",
            [target(per_hour(rate_sum(CAMPAIGNS, ("tier",))), "{{tier}}")],
            links(),
            stacked=True,
        ),
        graph(
            "Ads published per hour by platform",
            "Ads published per hour, by advertising platform.",
            "short",
            [target(per_hour(rate_sum(ADS, ("platform",))), "{{platform}}")],
            links(),
            stacked=True,
        ),
        bars(
            "Ads published by platform in the time range",
            "Ads published to each platform over the dashboard's time range.",
            "short",
            increase_sum(ADS, ("platform",), window="$__range"),
            "{{platform}}",
            links(),
        ),
    ]


def videos() -> list[object]:
    return [
        graph(
            "Video generations per hour by status",
            "Finished video generations per hour: succeeded, failed or cancelled.",
            "short",
            [target(per_hour(rate_sum(VIDEOS, ("status",))), "{{status}}")],
            links("status = error"),
            stacked=True,
        ),
        graph(
            "Video generation time p50 / p95",
            "Time to generate one ad video; dots are exemplar traces.",
            "s",
            [
                target(quantile(0.5, VIDEO_DURATION), "p50", exemplar=True),
                target(quantile(0.95, VIDEO_DURATION), "p95", exemplar=True),
            ],
            links("duration > 30s"),
        ),
    ]


def revenue() -> list[object]:
    platform = ("platform",)
    return [
        graph(
            "Revenue per hour by platform",
            "Revenue attributed to campaigns, US dollars per hour, by platform.",
            "currencyUSD",
            [target(per_hour(rate_sum(REVENUE, platform)), "{{platform}}")],
            links(),
            stacked=True,
        ),
        graph(
            "ROAS by platform",
            "Revenue divided by ad spend, by platform.",
            MULTIPLE,
            [target(ratio(rate_sum(REVENUE, platform), rate_sum(SPEND, platform)), "{{platform}}")],
            links(),
        ),
        graph(
            "Campaign ROAS p50 / p90",
            "Distribution of the ROAS of single campaign reports, by platform.",
            MULTIPLE,
            [
                target(quantile(0.5, ROAS, platform), "p50 {{platform}}"),
                target(quantile(0.9, ROAS, platform), "p90 {{platform}}"),
            ],
            links(),
        ),
        ranking(
            "Top campaigns by revenue",
            "The ten campaigns with the most revenue, from each instance's top-campaigns gauge.",
            "currencyUSD",
            f"topk(10, sum by (campaign) ({TOP}{sel()}))",
            links(),
        ),
    ]


def predictions() -> list[object]:
    model = ("model",)
    return [
        graph(
            "Prediction MAE (all instances)",
            "Mean absolute error of predictions, from every prediction in the window.",
            MULTIPLE,
            [
                target(
                    f"{rate_sum(ERROR + '_sum', model)} / {rate_sum(ERROR + '_count', model)}",
                    "{{model}}",
                )
            ],
            links(),
        ),
        graph(
            "Prediction MAE, recent window",
            "Mean absolute error over each instance's last predictions, averaged by model.",
            MULTIPLE,
            [target(f"avg by (model) ({MAE}{sel()})", "{{model}}")],
            links(),
        ),
        graph(
            "Prediction R², recent window",
            "Coefficient of determination over each instance's last predictions; 1 is perfect.",
            "none",
            [target(f"avg by (model) ({R2}{sel()})", "{{model}}")],
            links(),
        ),
        graph(
            "Active users",
            "Users active on the platform over time.",
            "short",
            [target(f"max({USERS}{sel()})", "active users")],
            links(),
        ),
    ]


def build() -> db.Dashboard:
    dashboard = new_dashboard(
        "otel-obs / Business KPIs",
        UID,
        "Campaigns, ads, videos, revenue, ROAS, prediction accuracy and active users.",
        ["business", "kpi"],
    )
    return add_rows(
        dashboard,
        [
            ("Overview", overview()),
            ("Campaigns and ads", campaigns_and_ads()),
            ("Video generation", videos()),
            ("Revenue and ROAS", revenue()),
            ("Prediction accuracy and users", predictions()),
        ],
    )
