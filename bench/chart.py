"""bench/results/chart.png: the figures of table.md as four small panels (matplotlib, optional).

    write_chart(dev, cluster, path)  # the parsed dev.json / cluster.json, either may be None

Each figure is drawn as a ratio to its floor where the benchmark measures one (the bare Temporal
update-with-start for registration, bare CreateSIPDispatchRule + bare signal -> activity for the
webhook -> rule lifecycle), with the absolute value written on the bar. A section missing from
both result files leaves its panel saying "not measured"; with no result at all the chart is
still written, every panel saying so. Without matplotlib (`pip install -e '.[bench]'`),
write_chart returns None and writes nothing. Values are read along the paths `bench.run._rows`
uses for the table, with its `_get`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.run import _get
from bench.stats import ratio

if TYPE_CHECKING:
    from matplotlib.axes import Axes  # type: ignore[import-not-found,unused-ignore]

Result = dict[str, Any] | None

OURS, FLOOR, OTHER = "#1f77b4", "#7f7f7f", "#ff7f0e"
KIND_COLOURS = {"dev": "#1f77b4", "cluster": "#2ca02c"}
KIND_NAMES = {"dev": "dev server", "cluster": "PostgreSQL cluster"}


def write_chart(dev: Result, cluster: Result, path: Path) -> Path | None:
    """Write the chart to `path` (PNG, 100 dpi); None when matplotlib is not installed."""
    try:
        import matplotlib  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        return None
    matplotlib.use("Agg")
    from matplotlib import pyplot  # type: ignore[import-not-found,unused-ignore]

    kinds = [(name, data) for name, data in (("dev", dev), ("cluster", cluster)) if data]
    figure, axes = pyplot.subplots(2, 2, figsize=(12, 8.4), dpi=100)
    try:
        _registration(axes[0][0], kinds)
        _lifecycle(axes[0][1], kinds)
        _rules(axes[1][0], kinds)
        _reconcile(axes[1][1], kinds)
        figure.suptitle(_title(kinds), fontsize=11)
        figure.tight_layout(rect=(0, 0, 1, 0.96))
        path.parent.mkdir(parents=True, exist_ok=True)
        figure.savefig(path, dpi=100, format="png")
    finally:
        pyplot.close(figure)
    return path


def _title(kinds: list[tuple[str, dict[str, Any]]]) -> str:
    if not kinds:
        return "meet-telephony benchmark: no result file"
    parts = []
    for name, data in kinds:
        machine = data.get("machine") or {}
        at = str(machine.get("at", "?")).replace("T", " ")[:16]
        parts.append(f"{name} {at} UTC")
    machine = kinds[0][1].get("machine") or {}
    return (
        f"meet-telephony benchmark — {machine.get('cores', '?')} cores "
        f"({machine.get('cpu', '?')}) — " + ", ".join(parts)
    )


def _not_measured(ax: Axes, title: str) -> None:
    ax.set_title(title, fontsize=10)
    ax.text(0.5, 0.5, "not measured", ha="center", va="center", fontsize=12, color=FLOOR)
    ax.set_xticks([])
    ax.set_yticks([])


def _ms(value: float) -> str:
    return f"{value:.1f} ms" if value < 100 else f"{value:.0f} ms"


def _floor_line(ax: Axes, label: str) -> None:
    ax.axhline(1.0, color=FLOOR, linestyle="--", linewidth=1, label=label)


def _bar_labels(ax: Axes, bars: Any, texts: list[str]) -> None:
    ax.bar_label(bars, labels=texts, fontsize=7, padding=2)


def _registration(ax: Axes, kinds: list[tuple[str, dict[str, Any]]]) -> None:
    """p50 one at a time and throughput with 20 clients, each / the bare update-with-start."""
    title = "registration (TelephonyClient) ÷ bare Temporal update-with-start"
    figures = (
        ("p50 latency,\none at a time", ("direct_c1", "p50_ms"), ("c1", "p50_ms"), "ms"),
        ("throughput,\n20 clients", ("direct_c20", "per_second"), ("c20", "per_second"), "/s"),
    )
    drawn = [
        (name, data)
        for name, data in kinds
        if any(_get(data, "registration", *ours) is not None for _, ours, _, _ in figures)
    ]
    if not drawn:
        _not_measured(ax, title)
        return
    width = 0.8 / len(drawn)
    for index, (name, data) in enumerate(drawn):
        heights, texts = [], []
        for _, ours_path, floor_path, unit in figures:
            ours = _get(data, "registration", *ours_path)
            floor = _get(data, "floors", "update_with_start", *floor_path)
            share = ratio(ours, floor)
            heights.append(share or 0.0)
            if ours is None:
                texts.append("-")
            elif unit == "ms":
                base = f"\nfloor {_ms(floor)}\nx{share}" if share else ""
                texts.append(f"{_ms(ours)}{base}")
            else:
                base = f"\nfloor {floor:g}/s\nx{share}" if share else ""
                texts.append(f"{ours:g} rooms/s{base}")
        bars = ax.bar(
            [i + (index - (len(drawn) - 1) / 2) * width for i in range(len(figures))],
            heights,
            width,
            color=KIND_COLOURS[name],
            label=KIND_NAMES[name],
        )
        _bar_labels(ax, bars, texts)
    _floor_line(ax, "floor = 1")
    ax.set_xticks(range(len(figures)), [label for label, *_ in figures], fontsize=8)
    ax.set_ylabel("ours ÷ floor (latency: >1 slower;\nthroughput: <1 fewer rooms/s)", fontsize=8)
    ax.set_ylim(0, max(3.0, ax.get_ylim()[1] * 1.25))
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7, loc="upper right")


def _lifecycle(ax: Axes, kinds: list[tuple[str, dict[str, Any]]]) -> None:
    """webhook -> rule created / deleted, p50 and p95 per rate, each / the lifecycle floor."""
    title = "webhook → rule, ÷ floor (bare create p50 + bare signal→activity p50)"
    series = (
        ("started_to_rule_stored", "p50_ms", "created p50", "#1f77b4"),
        ("started_to_rule_stored", "p95_ms", "created p95", "#aec7e8"),
        ("finished_to_rule_deleted", "p50_ms", "deleted p50", "#d62728"),
        ("finished_to_rule_deleted", "p95_ms", "deleted p95", "#ff9896"),
    )
    groups: list[tuple[str, dict[str, Any], float]] = []
    floors: list[str] = []
    for name, data in kinds:
        create = _get(data, "floors", "bare_create", "p50_ms")
        signal = _get(data, "floors", "signal_activity", "to_activity", "p50_ms")
        floor = None if create is None or signal is None else create + signal
        phases = _get(data, "callable", "phases") or []
        if phases and floor:
            floors.append(f"{name} {_ms(floor)}")
            groups.extend(
                (f"{name}\n{p['rate_per_second']:g} room starts/s", p, floor) for p in phases
            )
    if not groups:
        _not_measured(ax, title)
        return
    width = 0.8 / len(series)
    for index, (key, stat, label, colour) in enumerate(series):
        values = [_get(phase, key, stat) for _, phase, _ in groups]
        heights = [ratio(v, floor) or 0.0 for v, (_, _, floor) in zip(values, groups, strict=True)]
        bars = ax.bar(
            [i + (index - (len(series) - 1) / 2) * width for i in range(len(groups))],
            heights,
            width,
            color=colour,
            label=label,
        )
        _bar_labels(ax, bars, ["-" if v is None else f"{v:.0f}" for v in values])
    _floor_line(ax, f"floor = 1 ({', '.join(floors)})")
    ax.set_yscale("log")
    ax.set_ylim(0.5, ax.get_ylim()[1] * 2)
    ax.set_xticks(range(len(groups)), [label for label, *_ in groups], fontsize=8)
    ax.set_ylabel("latency ÷ floor (log; bar labels: ms)", fontsize=8)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7, loc="upper left", ncol=3)


def _rules(ax: Axes, kinds: list[tuple[str, dict[str, Any]]]) -> None:
    """create p50 per stored-rule count, on the emulator and on the real livekit-server: the
    bare create (floor, real server only), ours, and the original's list+filter+create."""
    title = "CreateSIPDispatchRule p50 by stored rules: emulator, real livekit-server"
    measured = [
        (name, server, sizes)
        for name, data in kinds
        for server, sizes in (
            ("emulator", _get(data, "rules", "sizes")),
            ("real", _get(data, "rules", "real", "sizes")),
        )
        if sizes
    ]
    several_kinds = len({name for name, *_ in measured}) > 1
    groups = [
        (
            f"{server} {size['stored_rules']}" + (f"\n({name})" if several_kinds else ""),
            _RULE_BARS[server],
            size,
        )
        for name, server, sizes in measured
        for size in sizes
    ]
    if not groups:
        _not_measured(ax, title)
        return
    width = 0.27
    for slot, label, colour in (
        (-1, "floor: bare create", FLOOR),
        (0, "ours (x: ÷ floor)", OURS),
        (1, "original: list + create (x: ÷ ours)", OTHER),
    ):
        placed = [
            (position, key, size)
            for position, (_, keys, size) in enumerate(groups)
            if (key := keys[slot + 1]) is not None
        ]
        values = [_get(size, key, "p50_ms") for _, key, size in placed]
        bars = ax.bar(
            [position + slot * width for position, _, _ in placed],
            [v or 0.0 for v in values],
            width,
            color=colour,
            label=label,
        )
        texts = ["-" if v is None else f"{v:.3g}" for v in values]  # ms, as on the axis
        texts = [
            f"{text}\nx{ratio_value}" if (ratio_value := _get(size, _RULE_RATIO.get(key))) else text
            for text, (_, key, size) in zip(texts, placed, strict=True)
        ]
        ax.bar_label(bars, labels=texts, fontsize=6, padding=2)
    ax.set_yscale("log")
    ax.set_ylim(0.5, ax.get_ylim()[1] * 3)
    ax.set_xticks(range(len(groups)), [label for label, *_ in groups], fontsize=7)
    ax.set_ylabel("p50 per create (ms, log)", fontsize=8)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7, loc="upper left", ncol=3)


# Per server: the keys of the floor, ours and the original in a size's figures (None: not
# measured there), and the key of the original ÷ ours ratio.
_RULE_BARS: dict[str, tuple[str | None, str, str]] = {
    "emulator": (None, "create", "baseline_list_filter_create"),
    "real": ("floor_create", "ours_create", "baseline_create"),
}
_RULE_RATIO = {
    "ours_create": "ours_vs_floor_create",
    "baseline_list_filter_create": "baseline_vs_create",
    "baseline_create": "baseline_vs_ours_create",
}


def _reconcile(ax: Axes, kinds: list[tuple[str, dict[str, Any]]]) -> None:
    """One reconcile pass over the orphan rules: wall seconds and events per workflow run."""
    title = "reconcile pass over orphan managed rules"
    drawn = [(name, rec) for name, data in kinds if (rec := _get(data, "reconcile"))]
    if not drawn:
        _not_measured(ax, title)
        return
    labels = [
        f"{name}: {rec.get('orphan_rules')} orphans,\n"
        f"{_get(rec, 'report', 'orphans_deleted')} deleted, {rec.get('runs')} run(s)"
        for name, rec in drawn
    ]
    width = 0.3
    positions = range(len(drawn))
    seconds = [rec.get("wall_seconds") for _, rec in drawn]
    bars = ax.bar(
        [i - width / 2 for i in positions],
        [s or 0.0 for s in seconds],
        width,
        color=OURS,
        label="wall time (s, left axis)",
    )
    _bar_labels(ax, bars, ["-" if s is None else f"{s:g} s" for s in seconds])
    ax.set_ylabel("wall time (s)", fontsize=8)
    ax.set_ylim(0, ax.get_ylim()[1] * 1.2)
    events_ax = ax.twinx()
    events = [rec.get("max_events_per_run") for _, rec in drawn]
    event_bars = events_ax.bar(
        [i + width / 2 for i in positions],
        [e or 0 for e in events],
        width,
        color=OTHER,
        label="max history events per run (right axis)",
    )
    _bar_labels(events_ax, event_bars, ["-" if e is None else f"{e} events" for e in events])
    events_ax.set_ylabel("history events per workflow run", fontsize=8)
    events_ax.set_ylim(0, events_ax.get_ylim()[1] * 1.2)
    ax.set_xticks(list(positions), labels, fontsize=8)
    ax.set_xlim(-0.8, len(drawn) - 0.2)
    ax.legend(handles=[bars, event_bars], fontsize=7, loc="upper left")
    ax.set_title(title, fontsize=10)
