"""`make bench`: every figure of the benchmark set in one run, against the Temporal CLI dev
server (default) or the Temporal PostgreSQL cluster (`--temporal cluster`), or both one after the
other (`--temporal both`). Writes bench/results/<temporal>.json and bench/results/table.md and
prints the table (both columns when both results exist).

    .venv/bin/python -m bench [--temporal dev|cluster|both] [--sections a,b,...] [--quick]

Sizes are flags (below) or BENCH_* environment variables of the same name (e.g.
BENCH_IDLE_SECONDS=60). Timings on a shared machine are noisy: the load average is recorded
around each section, repeated figures are medians; nothing here passes or fails on a timing.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from bench import callable as webhook_to_rule
from bench import emulator_rules, floors, idle, livekit_rules, reconcile, registration
from bench.harness import RESULTS, Stack, bounded, log, room_ids, running_stack, write_result
from bench.machine import describe, load_average
from bench.stats import ratio

SECTIONS = ("floors", "registration", "idle", "callable", "reconcile", "rules")
# On the cluster: every figure that involves Temporal (the rules section measures LiveKit alone).
CLUSTER_SECTIONS = ("floors", "registration", "idle", "callable", "reconcile")


def _sizes(text: str) -> list[int]:
    return [int(n) for n in text.split(",") if n]


def _rates(text: str) -> list[float]:
    return [float(n) for n in text.split(",") if n]


# name, type, default, help — each also read from BENCH_<NAME> when the flag is not given.
OPTIONS: list[tuple[str, Any, str, str]] = [
    ("repeats", int, "3", "repeats of the registration and update floor runs (medians)"),
    ("sequential", int, "30", "one-at-a-time registrations per repeat"),
    ("total_c20", int, "200", "registrations per repeat with 20 clients"),
    ("total_c200", int, "400", "registrations per repeat with 200 clients"),
    ("create_samples", int, "200", "bare CreateSIPDispatchRule round trips"),
    ("signal_samples", int, "30", "bare signal -> activity round trips"),
    ("rates", _rates, "1,10,50", "room starts per second for webhook -> rule"),
    ("rate_seconds", float, "20", "seconds of room starts per rate"),
    ("hold", float, "2", "seconds each room stays open"),
    ("idle_rooms", int, "1000", "at least this many idle rooms (registered if short)"),
    ("idle_seconds", float, "120", "idle window"),
    ("idle_sample", int, "50", "rooms (and their leases) whose histories are read"),
    ("orphans", int, "10000", "orphan managed rules for one reconcile pass"),
    ("rule_sizes", _sizes, "0,1000,10000", "stored rules for the create-cost figure"),
    ("rule_creates", int, "200", "timed creates per size (rounds on the real livekit-server)"),
]

QUICK = {
    "repeats": "1",
    "sequential": "10",
    "total_c20": "40",
    "total_c200": "200",
    "create_samples": "30",
    "signal_samples": "10",
    "rates": "1,10",
    "rate_seconds": "5",
    "idle_rooms": "200",
    "idle_seconds": "20",
    "idle_sample": "10",
    "orphans": "2000",
    "rule_sizes": "0,1000",
    "rule_creates": "30",
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--temporal", choices=("dev", "cluster", "both"), default=None)
    parser.add_argument("--sections", default=None, help=f"comma list of {','.join(SECTIONS)}")
    parser.add_argument("--quick", action="store_true", help="small sizes (a smoke run)")
    parser.add_argument("--log-dir", type=Path, default=None)
    for name, _kind, _default, text in OPTIONS:
        parser.add_argument(f"--{name.replace('_', '-')}", dest=name, default=None, help=text)
    args = parser.parse_args(argv)
    quick = args.quick or os.environ.get("BENCH_QUICK") == "1"
    for name, kind, default, _text in OPTIONS:
        raw = getattr(args, name)
        if raw is None:
            raw = os.environ.get(
                f"BENCH_{name.upper()}", QUICK.get(name, default) if quick else default
            )
        setattr(args, name, kind(raw))
    args.temporal = args.temporal or os.environ.get("BENCH_TEMPORAL", "dev")
    sections = args.sections or os.environ.get("BENCH_SECTIONS")
    args.sections = sections.split(",") if sections else None
    return args


async def _section(results: dict[str, Any], name: str, run: Any) -> Any:
    load_before = load_average()
    started = time.perf_counter()
    log(f"--- {name} (load average {load_before})")
    value = await run
    results.setdefault("load", {})[name] = {
        "before": load_before,
        "after": load_average(),
        "seconds": round(time.perf_counter() - started, 1),
    }
    return value


async def _enough_idle_rooms(stack: Stack, pins: dict[str, str], wanted: int) -> float | None:
    """Register rooms until `wanted` idle rooms exist; the seconds it took (None: none needed)."""
    missing = wanted - len(pins)
    if missing <= 0:
        return None
    started = time.perf_counter()
    await bounded(
        [
            functools.partial(registration.register_direct, stack, room, pins)
            for room in room_ids("idle", missing)
        ],
        20,
    )
    return round(time.perf_counter() - started, 1)


async def run_kind(kind: str, args: argparse.Namespace) -> dict[str, Any]:
    wanted = args.sections or list(SECTIONS if kind == "dev" else CLUSTER_SECTIONS)
    unknown = set(wanted) - set(SECTIONS)
    if unknown:
        raise SystemExit(f"unknown sections: {', '.join(sorted(unknown))}")
    results: dict[str, Any] = {"temporal_kind": kind, "machine": describe(), "sizes": {}}
    results["sizes"] = {name: getattr(args, name) for name, *_ in OPTIONS}
    stack_sections = [name for name in wanted if name != "rules"]
    if stack_sections:
        log_dir = args.log_dir / kind if args.log_dir else None
        async with running_stack(kind, log_dir) as stack:
            results["temporal"] = stack.temporal.version
            pins: dict[str, str] = {}
            if "floors" in wanted:
                create = await _section(
                    results,
                    "floor: bare create",
                    floors.bare_create(
                        stack.emulator.url,
                        stack.settings.livekit_api_key or "",
                        stack.service_env["LIVEKIT_API_SECRET"],
                        args.create_samples,
                    ),
                )
                temporal = await _section(
                    results,
                    "floor: temporal",
                    floors.temporal_floors(
                        stack.client,
                        signal_samples=args.signal_samples,
                        update_sequential=args.sequential,
                        update_totals={20: args.total_c20, 200: args.total_c200},
                        repeats=args.repeats,
                    ),
                )
                results["floors"] = {"bare_create": create, **temporal}
            if "registration" in wanted:
                figures, found = await _section(
                    results,
                    "registration",
                    registration.measure(
                        stack,
                        sequential=args.sequential,
                        totals={20: args.total_c20, 200: args.total_c200},
                        repeats=args.repeats,
                    ),
                )
                pins.update(found)
                results["registration"] = figures
            if "idle" in wanted:
                extra = await _enough_idle_rooms(stack, pins, args.idle_rooms)
                results["idle"] = await _section(
                    results,
                    "idle",
                    idle.measure(stack, pins, args.idle_seconds, args.idle_sample),
                )
                results["idle"]["extra_registration_seconds"] = extra
            if "callable" in wanted:
                need = max(round(rate * args.rate_seconds) for rate in args.rates)
                await _enough_idle_rooms(stack, pins, need)
                results["callable"] = await _section(
                    results,
                    "webhook -> rule",
                    webhook_to_rule.measure(
                        stack,
                        sorted(pins),
                        args.rates,
                        {rate: args.rate_seconds for rate in args.rates},
                        args.hold,
                    ),
                )
            if "reconcile" in wanted:
                results["reconcile"] = await _section(
                    results, "reconcile", reconcile.measure(stack, args.orphans)
                )
            results["registered_rooms"] = len(pins)
            results["memory_at_end"] = stack.memory()
    if "rules" in wanted:
        results["rules"] = await _section(
            results,
            "rules",
            emulator_rules.measure(
                args.rule_sizes, args.rule_creates, max(5, args.rule_creates // 10), log
            ),
        )
        results["rules"]["real"] = await _section(
            results,
            "rules: real livekit-server",
            livekit_rules.measure(args.rule_sizes, args.rule_creates, log),
        )
    results["machine"]["load_average_at_end"] = load_average()
    if args.sections:
        results = _merged(_read(kind), results, wanted)
    write_result(kind, results)
    return results


def _merged(
    previous: dict[str, Any] | None, run: dict[str, Any], wanted: list[str]
) -> dict[str, Any]:
    """A run of some sections updates those in the kind's result file and keeps the others;
    `partial_runs` says which sections came from which run (machine, load, sizes)."""
    if previous is None:
        return run
    merged = dict(previous)
    for section in wanted:
        if section in run:
            merged[section] = run[section]
    merged["load"] = {**previous.get("load", {}), **run.get("load", {})}
    merged["partial_runs"] = [
        *previous.get("partial_runs", []),
        {"sections": wanted, "machine": run["machine"], "sizes": run["sizes"]},
    ]
    return merged


# --- the table ----------------------------------------------------------------------------------


def _get(data: dict[str, Any] | None, *path: Any) -> Any:
    value: Any = data
    for key in path:
        if value is None:
            return None
        if isinstance(key, int) and isinstance(value, list):
            value = value[key] if len(value) > key else None
        else:
            value = value.get(key) if isinstance(value, dict) else None
    return value


def _ms(value: Any) -> str:
    return "-" if value is None else f"{value:.1f} ms" if value < 100 else f"{value:.0f} ms"


def _rows(data: dict[str, Any] | None) -> list[tuple[str, str]]:
    """(figure, value) for one result file; figures missing from it show -."""
    rows: list[tuple[str, str]] = []
    reg = _get(data, "registration")
    floor = _get(data, "floors", "update_with_start")

    def both(figure: str, ours: Any, base: Any, unit: str) -> None:
        if ours is None:
            rows.append((figure, "-"))
            return
        text = _ms(ours) if unit == "ms" else f"{ours:g} rooms/s"
        if base is not None:
            base_text = _ms(base) if unit == "ms" else f"{base:g}/s"
            text += f" (floor {base_text}, x{ratio(ours, base)})"
        rows.append((figure, text))

    both(
        "register p50, one at a time (TelephonyClient)",
        _get(reg, "direct_c1", "p50_ms"),
        _get(floor, "c1", "p50_ms"),
        "ms",
    )
    both(
        "register p95, one at a time (TelephonyClient)",
        _get(reg, "direct_c1", "p95_ms"),
        _get(floor, "c1", "p95_ms"),
        "ms",
    )
    both("register p50, one at a time (HTTP PUT)", _get(reg, "http_c1", "p50_ms"), None, "ms")
    for clients in (20, 200):
        both(
            f"register throughput, {clients} clients (TelephonyClient)",
            _get(reg, f"direct_c{clients}", "per_second"),
            _get(floor, f"c{clients}", "per_second"),
            "rate",
        )
        both(
            f"register p50 / p95, {clients} clients",
            _get(reg, f"direct_c{clients}", "p50_ms"),
            _get(floor, f"c{clients}", "p50_ms"),
            "ms",
        )
        if _get(reg, f"direct_c{clients}", "p95_ms") is not None:
            rows[-1] = (
                rows[-1][0],
                rows[-1][1] + f"; p95 {_ms(_get(reg, f'direct_c{clients}', 'p95_ms'))}",
            )
    both(
        "register throughput, 20 clients (HTTP PUT)",
        _get(reg, "http_c20", "per_second"),
        None,
        "rate",
    )
    create = _get(data, "floors", "bare_create", "p50_ms")
    signal = _get(data, "floors", "signal_activity", "to_activity", "p50_ms")
    hook_floor = None if create is None or signal is None else create + signal
    rows.append(("floor: bare CreateSIPDispatchRule p50", _ms(create)))
    rows.append(("floor: bare signal → empty activity p50", _ms(signal)))
    for phase in _get(data, "callable", "phases") or []:
        rate = phase["rate_per_second"]
        for key, label in (
            ("started_to_rule_stored", "room_started → rule created"),
            ("finished_to_rule_deleted", "room_finished → rule deleted"),
        ):
            p50, p95, p99 = (phase[key].get(f"p{n}_ms") for n in (50, 95, 99))
            text = f"p50 {_ms(p50)}, p95 {_ms(p95)}, p99 {_ms(p99)}"
            if hook_floor and p50 is not None:
                text += f" (floor {_ms(hook_floor)}, x{ratio(p50, hook_floor)})"
            if phase.get("missing"):
                text += f", missing {phase['missing']}"
            rows.append((f"{label} at {rate:g}/s (n={phase['rooms']})", text))
    idle_data = _get(data, "idle")
    if idle_data:
        per_minute = idle_data["per_minute"]
        rows.append(
            (
                "idle rooms: workflow tasks and activities per minute, pending timers",
                f"{idle_data['idle_rooms']} rooms over {idle_data['window_seconds']:g} s: "
                f"{per_minute['workflow_tasks']:g} workflow tasks/min, "
                f"{per_minute['activities']:g} activities/min; pending timers "
                f"{idle_data['pending_timers_in_sample']} in "
                f"{idle_data['histories_read']} histories",
            )
        )
        memory = idle_data["memory"]
        temporal_rss = sum(v or 0 for v in memory["temporal_rss_mib"].values())
        rows.append(
            (
                "idle: RSS worker / Temporal server",
                f"{memory['worker_rss_mib']} MiB / {temporal_rss:.0f} MiB",
            )
        )
    rec = _get(data, "reconcile")
    if rec:
        rows.append(
            (
                "reconcile: one pass over orphan rules and every lease",
                f"{rec['orphan_rules']} orphans + {rec['report']['leases_checked']} leases: "
                f"{rec['wall_seconds']:g} s, {rec['report']['orphans_deleted']} deleted, "
                f"{rec['runs']} run(s), max {rec['max_events_per_run']} events/run",
            )
        )
    for size in _get(data, "rules", "sizes") or []:
        rows.append(
            (
                f"emulator: create with {size['stored_rules']} stored rules "
                "(original: list+create)",
                f"{_ms(size['create']['p50_ms'])} (original "
                f"{_ms(size['baseline_list_filter_create']['p50_ms'])}, "
                f"x{size['baseline_vs_create']})",
            )
        )
    rows.extend(
        _real_rule_rows(
            _get(data, "rules", "real"), _get(data, "load", "rules: real livekit-server")
        )
    )
    return rows


def _real_rule_rows(
    real: dict[str, Any] | None, load: dict[str, Any] | None
) -> list[tuple[str, str]]:
    """The real livekit-server's rows of the rule-cost figure: per size, create (floor, ours,
    the original's list+filter+create) and delete (ours by id, the original's list+filter+delete),
    p50 / p95 with ours ÷ floor and original ÷ ours at p50."""
    if real is None:
        return []
    if real.get("skipped"):
        return [("real livekit-server: rule create / delete", f"not measured: {real['skipped']}")]

    def p50_p95(stats: dict[str, Any]) -> str:
        return f"{_ms(stats['p50_ms'])} / {_ms(stats['p95_ms'])}"

    rows = []
    for size in real.get("sizes", []):
        stored = size["stored_rules"]
        rows.append(
            (
                f"real livekit-server: create with {stored} stored rules, p50 / p95",
                f"floor {p50_p95(size['floor_create'])}; ours {p50_p95(size['ours_create'])} "
                f"(x{size['ours_vs_floor_create']} of floor); original list+create "
                f"{p50_p95(size['baseline_create'])} (x{size['baseline_vs_ours_create']} of ours)",
            )
        )
        rows.append(
            (
                f"real livekit-server: delete with {stored} stored rules, p50 / p95",
                f"floor {p50_p95(size['floor_delete'])}; ours {p50_p95(size['ours_delete'])} "
                f"(x{size['ours_vs_floor_delete']} of floor); original list+delete "
                f"{p50_p95(size['baseline_delete'])} (x{size['baseline_vs_ours_delete']} of ours)",
            )
        )
    if load:
        rows.append(
            (
                "real livekit-server: load average before / after, seconds",
                f"{load['before']} / {load['after']}, {load['seconds']:g} s",
            )
        )
    return rows


def table(dev: dict[str, Any] | None, cluster: dict[str, Any] | None) -> str:
    dev_rows, cluster_rows = _rows(dev), dict(_rows(cluster))
    lines = ["| figure | dev server | PostgreSQL cluster |", "|---|---|---|"]
    for figure, value in dev_rows:
        lines.append(f"| {figure} | {value} | {cluster_rows.get(figure, '-')} |")
    for data, name in ((dev, "dev server"), (cluster, "cluster")):
        if data:
            machine = data["machine"]
            lines.append("")
            lines.append(
                f"{name}: {data.get('temporal', '?')}, {machine['at']}, {machine['cores']} cores "
                f"({machine['cpu']}), {machine['memory_gib']} GiB, load average at start "
                f"{machine['load_average']}, at end {machine.get('load_average_at_end')}"
            )
            for partial in data.get("partial_runs", []):
                at = partial["machine"]
                lines.append(
                    f"{name}, re-measured {', '.join(partial['sections'])}: {at['at']}, load "
                    f"average at start {at['load_average']}, at end "
                    f"{at.get('load_average_at_end')}"
                )
    return "\n".join(lines) + "\n"


def _read(name: str) -> dict[str, Any] | None:
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    kinds = ["dev", "cluster"] if args.temporal == "both" else [args.temporal]
    for kind in kinds:
        asyncio.run(run_kind(kind, args))
    dev, cluster = _read("dev"), _read("cluster")
    text = table(dev, cluster)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "table.md").write_text(text)
    print()
    print(text)
    # The chart is optional (matplotlib, the `bench` extra): its absence or a drawing error is
    # one line, never a failed benchmark (the figures are already in the JSON and the table).
    from bench.chart import write_chart  # here: bench.chart imports bench.run

    try:
        chart = write_chart(dev, cluster, RESULTS / "chart.png")
    except Exception as error:
        print(f"chart not written: {error!r}")
    else:
        print(f"chart: {chart}" if chart else "no chart: pip install -e '.[bench]' gives one")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
