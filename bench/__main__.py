"""Run the benchmark: `python -m bench [--devices N] [--only TEXT] [--write-docs]` (or `make bench`)."""

import argparse
import json
import os
import platform
import re
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

os.environ["DJANGO_SETTINGS_MODULE"] = "bench.settings"

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
DOCS = HERE.parent / "docs" / "PERFORMANCE.md"
MARKERS = {
    "generated": ("<!-- bench:results:start -->", "<!-- bench:results:end -->"),
    "customer": ("<!-- bench:customer:start -->", "<!-- bench:customer:end -->"),
}


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--devices", type=int, default=1_000_000, help="fleet size (default 1,000,000)")
    parser.add_argument("--fleet", choices=["generated", "customer"], default="generated",
                        help="generated with SQL and analyzed (default), or built through the API as a customer would,"
                             " measured right after the build")
    parser.add_argument("--groups", type=int, default=1000, help="number of groups (default 1,000)")
    parser.add_argument("--repeat", type=int, default=15, help="timed runs per read scenario (default 15)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed runs first (default 2)")
    parser.add_argument("--only", action="append", default=[],
                        help="run only scenarios whose name contains this text (repeatable)")
    parser.add_argument("--regenerate", action="store_true", help="drop the benchmark database and generate anew")
    parser.add_argument("--write-docs", action="store_true", help="write the results into docs/PERFORMANCE.md")
    parser.add_argument("--budget", type=float, default=120,
                        help="seconds a scenario may use; longer statements are cancelled (default 120)")
    parser.add_argument("--load-seconds", type=int, default=10, help="wrk duration per endpoint (default 10)")
    parser.add_argument("--load-connections", type=int, default=16)
    parser.add_argument("--workers", type=int, default=4, help="gunicorn workers for the load test (default 4)")
    return parser.parse_args(argv)


def run(scenario, *, repeat: int, warmup: int, budget: float, log):
    """Warm up (the first call counts the queries), time `repeat` calls, then the database floor.

    Every statement is cut off at `budget` seconds and sampling stops once the scenario has
    used its budget, so a pathological query shape costs minutes, not hours, and still shows.
    """
    from django.db import OperationalError, connection

    from bench.measure import Result, Unavailable, WrongAnswer, counted, database_floor, timed

    result = Result(scenario.name, scenario.group, target_ms=scenario.target_ms,
                    target_p95_ms=scenario.target_p95_ms, extra=dict(scenario.extra))
    repeat = scenario.repeat or repeat
    warmup = scenario.warmup if scenario.warmup is not None else warmup
    with connection.cursor() as cursor:
        cursor.execute("SELECT set_config('statement_timeout', %s, false)", [f"{int(budget * 1000)}"])
    started = time.monotonic()
    try:
        if scenario.prepare:
            scenario.prepare()
        reset = scenario.reset or (lambda: None)
        reset()
        (first_ms, (outcome, queries)) = timed(lambda: counted(scenario.call))
        scenario.check(outcome)
        result.queries = len(queries)
        # Where a write's time goes, as Django measured each statement of the counted call.
        result.extra["query_times"] = [{"ms": round(float(query["time"]) * 1000, 2), "sql": query["sql"][:200]}
                                       for query in queries]
        slow = first_ms > budget * 1000 / 4
        if slow:
            # Too slow to repeat within the budget: the counted call is the only sample.
            result.samples_ms.append(first_ms)
            result.detail = "one sample: a call takes more than a quarter of the budget"
        else:
            for _ in range(max(0, warmup - 1)):
                reset()
                scenario.check(scenario.call())
            for _ in range(repeat):
                reset()
                ms, outcome = timed(scenario.call)
                scenario.check(outcome)
                result.samples_ms.append(ms)
                if time.monotonic() - started > budget and len(result.samples_ms) >= 3:
                    result.detail = f"{len(result.samples_ms)} samples: budget of {budget:.0f} s used"
                    break
        if scenario.floor:
            floor = database_floor(queries, repeat=1 if slow else 3)
            result.floor_ms, result.slowest_sql, result.slowest_plan, result.extra["query_floors"] = floor
    except Unavailable as reason:
        result.status, result.detail = "not available", str(reason)
    except WrongAnswer as reason:
        result.status, result.detail = "wrong answer", str(reason)
    except OperationalError as error:
        if "statement timeout" not in str(error):
            raise
        result.status, result.detail = "timeout", f"a statement ran longer than {budget:.0f} s and was cancelled"
    except Exception as error:  # a half-built endpoint must not stop the other scenarios
        result.status, result.detail = "error", f"{type(error).__name__}: {error}"[:300]
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT set_config('statement_timeout', '0', false)")
        if scenario.cleanup:
            scenario.cleanup()
    log(_line(result))
    return result


def _fmt(value, digits=1):
    return "" if value is None else f"{value:,.{digits}f}"


def _target(result) -> str:
    if result.target_ratio is not None:
        return f"ratio ≥ {result.target_ratio:.2f}"
    if result.target_ms is None:
        return ""
    text = f"p50 ≤ {result.target_ms:,.0f}"
    if result.target_p95_ms is not None:
        text += f", p95 ≤ {result.target_p95_ms:,.0f}"
    return text


def _line(result) -> str:
    if result.status != "ok":
        return f"  {result.verdict:<13} {result.scenario}: {result.detail}"
    ratio = f" ratio {result.throughput_ratio:.2f}" if result.throughput_ratio is not None else ""
    return (f"  {result.verdict:<13} {result.scenario}: p50 {_fmt(result.median_ms)} ms, p95 {_fmt(result.p95_ms)} ms,"
            f" {result.queries} queries{ratio}" + (f", DB floor {_fmt(result.floor_ms)} ms" if result.floor_ms else ""))


def table(results) -> str:
    rows = ["| scenario | median ms | p95 ms | queries | target | DB floor ms | app/DB | verdict |",
            "|---|---:|---:|---:|---|---:|---:|---|"]
    for result in results:
        verdict = result.verdict
        if result.throughput_ratio is not None:
            verdict += f" ({result.throughput_ratio:.2f})"
        elif result.status != "ok":
            verdict += f": {result.detail}"
        rows.append(
            f"| {result.scenario} | {_fmt(result.median_ms)} | {_fmt(result.p95_ms)} | "
            f"{'' if result.queries is None else result.queries} | {_target(result)} | {_fmt(result.floor_ms)} | "
            f"{_fmt(result.ratio, 2)} | {verdict.replace('|', '/')} |"
        )
    return "\n".join(rows)


def machine() -> dict:
    import django
    from django.db import connection

    cpu = ""
    try:
        cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                    if line.startswith("model name")), "")
    except OSError:
        pass
    memory = ""
    try:
        kb = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1))
        memory = f"{kb / 1024 / 1024:.0f} GiB"
    except (OSError, AttributeError):
        pass
    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        postgres = cursor.fetchone()[0]
        cursor.execute("SELECT name, current_setting(name) FROM pg_settings WHERE name IN"
                       " ('shared_buffers', 'work_mem', 'effective_cache_size', 'random_page_cost', 'jit')")
        settings = dict(cursor.fetchall())
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory": memory,
        "os": platform.platform(),
        "python": platform.python_version(),
        "django": django.get_version(),
        "postgresql": postgres,
        "postgresql_settings": settings,
        "load_average_at_start": os.getloadavg(),
    }


def _build_lines(details: dict) -> list[str]:
    lines = []
    for phase, label in (("import", "Import"), ("grouping", "Grouping by batch edits by filter")):
        if phase in details:
            step = details[phase]
            analyzed = ", ".join(f"{table} {count}" for table, count in step["analyzes"].items() if count) or "none"
            lines.append(f"- {label}: {step['calls']:,} calls, median {step['median_ms']:,.0f} ms, slowest"
                         f" {step['max_ms']:,.0f} ms, {step['seconds']:,.0f} s in all; ANALYZE runs: {analyzed}.")
    if "planner" in details:
        lines.append(f"- Right after the build the planner estimated {details['planner']['product_devices_estimate']:,}"
                     f" devices in the product and {details['planner']['memberships_estimate']:,} memberships.")
    return lines


def write_docs(summary: dict, results) -> None:
    info = summary["machine"]
    fleet = summary["fleet"]
    DOCS_START, DOCS_END = MARKERS[fleet["kind"]]
    settings = ", ".join(f"{key} {value}" for key, value in sorted(info["postgresql_settings"].items()))
    section = "\n".join([
        DOCS_START,
        f"Run {summary['finished_at']} with `{summary['command']}`.",
        "",
        f"- Fleet: {fleet['devices']:,} devices, {fleet['groups']:,} groups, {fleet['memberships']:,} memberships "
        f"({'built through the API' if fleet['kind'] == 'customer' else 'generated'} in"
        f" {fleet['generation_seconds']:.0f} s{', reused' if fleet['reused'] else ''}).",
        *_build_lines(fleet.get("details") or {}),
        f"- Machine: {info['cpu'] or 'unknown CPU'}, {info['cores']} cores, {info['memory']}; {info['os']}.",
        f"- Software: Python {info['python']}, Django {info['django']}, PostgreSQL {info['postgresql']} ({settings}).",
        f"- Load average at start / end: {' '.join(f'{x:.2f}' for x in info['load_average_at_start'])} / "
        f"{' '.join(f'{x:.2f}' for x in summary['load_average_at_end'])}.",
        "",
        table(results),
        DOCS_END,
    ])
    text = DOCS.read_text() if DOCS.exists() else f"# Performance\n\n{DOCS_START}\n{DOCS_END}\n"
    if DOCS_START not in text:
        text += f"\n## Latest results ({fleet['kind']} fleet)\n\n{DOCS_START}\n{DOCS_END}\n"
    before, rest = text.split(DOCS_START, 1)
    after = rest.split(DOCS_END, 1)[1]
    DOCS.write_text(before + section + after)


def main(argv=None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    os.environ["BENCH_FLEET"] = args.fleet
    from bench import fleet as fleet_module
    from bench import settings as bench_settings

    fleet_module.ensure_database(os.environ["DATABASE_URL"], recreate=args.regenerate)
    import django

    django.setup()
    from bench import load, scenarios

    started = time.monotonic()
    fleet_module.migrate()
    fleet = fleet_module.ensure(devices=args.devices, groups=args.groups, customer=args.fleet == "customer")
    bench = scenarios.Bench(fleet)
    info = machine()
    print(f"Database {bench_settings.DATABASES['default']['NAME']}; "
          f"{info['cores']} cores, load average {info['load_average_at_start'][0]:.2f}.", flush=True)

    def wanted(name):
        return not args.only or any(text.lower() in name.lower() for text in args.only)

    results = []
    for scenario in scenarios.all_scenarios(bench):
        if wanted(scenario.name):
            results.append(run(scenario, repeat=args.repeat, warmup=args.warmup, budget=args.budget, log=lambda line: print(line, flush=True)))
    if wanted("rollout: handshake cost"):
        from bench import rollouts

        result = rollouts.handshake_cost(bench, seconds=args.load_seconds, connections=args.load_connections,
                                         workers=args.workers)
        print(f"  {result.scenario}: {result.detail}", flush=True)
        results.append(result)
    if wanted("handshake throughput"):
        result = load.handshake_throughput(bench, seconds=args.load_seconds, connections=args.load_connections,
                                           workers=args.workers)
        print(_line(result), flush=True)
        results.append(result)

    summary = {
        "finished_at": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "command": "make bench" + (f" BENCH_ARGS='{' '.join(sys.argv[1:])}'" if sys.argv[1:] else ""),
        "seconds": round(time.monotonic() - started, 1),
        "fleet": {"kind": args.fleet, "details": fleet.details, "devices": fleet.devices, "groups": fleet.groups, "memberships": fleet.memberships,
                  "generation_seconds": fleet.seconds, "generated_at": fleet.generated_at, "reused": fleet.reused},
        "machine": info,
        "load_average_at_end": os.getloadavg(),
        "results": [result.as_json() for result in results],
    }
    print()
    print(table(results))
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S")
    latest = "latest.json" if args.fleet == "generated" else f"latest-{args.fleet}.json"
    for path in (RESULTS / latest, RESULTS / f"{stamp}-{args.fleet}-{fleet.devices}.json"):
        path.write_text(json.dumps(summary, indent=2, default=str))
    print(f"\nResults in {(RESULTS / latest).relative_to(HERE.parent)}.")
    if args.write_docs:
        write_docs(summary, results)
        print(f"Wrote the summary into {DOCS.relative_to(HERE.parent)}.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
