"""Write the dashboards' JSON and the alert rules from their code; ``--check`` finds stale files.

    python -m dashboards.generate           # rewrite dashboards/*.json and the rule file
    python -m dashboards.generate --check   # exit 1 naming each file that differs

The JSON and the rule file are committed so that Grafana and Prometheus read them as they
are; this module is the only thing that should write them.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from grafana_foundation_sdk.cog.encoder import JSONEncoder

from dashboards import ai_costs, api_performance, business_kpis, rules, system_health

HERE = Path(__file__).resolve().parent

DASHBOARDS: dict[str, Callable[[], Any]] = {
    "api-performance.json": api_performance.build,
    "ai-costs.json": ai_costs.build,
    "business-kpis.json": business_kpis.build,
    "system-health.json": system_health.build,
}


def render_dashboard(build: Callable[[], Any]) -> str:
    """The dashboard's JSON: stable key order, sequential panel ids, no dashboard id."""
    model = json.loads(json.dumps(build().build(), cls=JSONEncoder))
    model.pop("id", None)
    for number, panel in enumerate(model.get("panels", []), start=1):
        panel["id"] = number
    return json.dumps(model, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def rendered() -> dict[Path, str]:
    """Every generated file and the text it should hold."""
    files = {HERE / name: render_dashboard(build) for name, build in DASHBOARDS.items()}
    files[rules.RULES_FILE] = rules.render(rules.load_thresholds())
    return files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report files that are stale")
    args = parser.parse_args(argv)

    stale = []
    for path, content in rendered().items():
        current = path.read_text(encoding="utf-8") if path.exists() else None
        if current == content:
            continue
        stale.append(path)
        if not args.check:
            path.write_text(content, encoding="utf-8")

    for path in stale:
        verb = "stale" if args.check else "wrote"
        print(f"{verb}: {path.relative_to(HERE.parent)}")
    if args.check and stale:
        print("run `python -m dashboards.generate` and commit the result", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
