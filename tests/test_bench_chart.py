"""bench/chart.py draws a PNG from a result dict, and from no result at all (every panel then
says "not measured"; write_chart returns None only when matplotlib is missing)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("matplotlib")

from bench.chart import write_chart

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _stats(p50: float, p95: float) -> dict[str, float]:
    return {"p50_ms": p50, "p95_ms": p95}


DEV: dict[str, Any] = {
    "machine": {"at": "2026-12-02T14:51:28+00:00", "cores": 2, "cpu": "AMD EPYC"},
    "floors": {
        "bare_create": _stats(1.8, 4.9),
        "signal_activity": {"to_activity": _stats(25.1, 76.1)},
        "update_with_start": {"c1": _stats(49.6, 54.8), "c20": {"per_second": 29.5}},
    },
    "registration": {"direct_c1": _stats(98.3, 141.3), "direct_c20": {"per_second": 16.3}},
    "callable": {
        "phases": [
            {
                "rate_per_second": 1.0,
                "rooms": 5,
                "started_to_rule_stored": _stats(48.4, 53.6),
                "finished_to_rule_deleted": _stats(42.2, 53.3),
            }
        ]
    },
    "reconcile": {
        "orphan_rules": 100,
        "wall_seconds": 1.5,
        "runs": 1,
        "max_events_per_run": 40,
        "report": {"orphans_deleted": 100},
    },
    "rules": {
        "sizes": [
            {
                "stored_rules": 0,
                "create": _stats(1.3, 1.4),
                "baseline_list_filter_create": _stats(2.5, 2.7),
                "baseline_vs_create": 1.89,
            }
        ]
    },
}


def test_a_dev_result_gives_a_png(tmp_path: Path) -> None:
    path = write_chart(DEV, None, tmp_path / "chart.png")
    assert path == tmp_path / "chart.png"
    assert path.read_bytes()[:8] == PNG_SIGNATURE


def test_no_result_still_gives_a_png_of_not_measured_panels(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from matplotlib.figure import Figure  # type: ignore[import-not-found,unused-ignore]
    from matplotlib.text import Text  # type: ignore[import-not-found,unused-ignore]

    texts: list[str] = []
    savefig = Figure.savefig

    def recording_savefig(figure: Figure, *args: Any, **kwargs: Any) -> None:
        texts.extend(text.get_text() for text in figure.findobj(Text))
        savefig(figure, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", recording_savefig)
    path = write_chart(None, None, tmp_path / "out" / "chart.png")
    assert path is not None
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    assert texts.count("not measured") == 4
