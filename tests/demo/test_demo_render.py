"""The text form of the summary."""

from __future__ import annotations

from otel_obs.demo.render import tree_prefixes


def test_tree_prefixes_draw_branches_and_close_them() -> None:
    depths = [0, 1, 2, 3, 3, 2, 1]

    drawn = [prefix + "x" for prefix in tree_prefixes(depths)]

    assert drawn == [
        "x",
        "├─ x",
        "│  ├─ x",
        "│  │  ├─ x",
        "│  │  └─ x",
        "│  └─ x",
        "└─ x",
    ]
