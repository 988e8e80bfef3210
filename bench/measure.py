"""Timing, statistics and the database floor of a scenario."""

import statistics
import time
from dataclasses import dataclass, field

from django.db import connection
from django.test.utils import CaptureQueriesContext


class Unavailable(Exception):
    """The endpoint or function a scenario needs does not exist (yet)."""


class WrongAnswer(Exception):
    """The call answered, but not with what the fleet holds: its timing would mean nothing."""


@dataclass
class Result:
    scenario: str
    group: str
    status: str = "ok"  # ok, not available, wrong answer, error
    detail: str = ""
    samples_ms: list[float] = field(default_factory=list)
    queries: int | None = None
    target_ms: float | None = None
    target_p95_ms: float | None = None
    floor_ms: float | None = None
    slowest_sql: str = ""
    slowest_plan: str = ""
    # Throughput scenarios are judged by a ratio, not a time.
    throughput_ratio: float | None = None
    target_ratio: float | None = None
    extra: dict = field(default_factory=dict)

    @property
    def median_ms(self) -> float | None:
        return statistics.median(self.samples_ms) if self.samples_ms else None

    @property
    def p95_ms(self) -> float | None:
        return percentile(self.samples_ms, 95) if self.samples_ms else None

    @property
    def ratio(self) -> float | None:
        if self.median_ms is None or not self.floor_ms:
            return None
        return self.median_ms / self.floor_ms

    @property
    def verdict(self) -> str:
        if self.status == "timeout":
            return "FAIL"
        if self.status != "ok":
            return self.status
        if self.target_ratio is not None:
            return "PASS" if self.throughput_ratio >= self.target_ratio else "FAIL"
        if self.target_ms is None:
            return "info"
        passed = self.median_ms <= self.target_ms
        if self.target_p95_ms is not None:
            passed = passed and self.p95_ms <= self.target_p95_ms
        return "PASS" if passed else "FAIL"

    def as_json(self) -> dict:
        return {
            "scenario": self.scenario,
            "group": self.group,
            "status": self.status,
            "verdict": self.verdict,
            "detail": self.detail,
            "median_ms": _round(self.median_ms),
            "p95_ms": _round(self.p95_ms),
            "samples_ms": [_round(sample) for sample in self.samples_ms],
            "queries": self.queries,
            "target_ms": self.target_ms,
            "target_p95_ms": self.target_p95_ms,
            "db_floor_ms": _round(self.floor_ms),
            "app_db_ratio": _round(self.ratio),
            "throughput_ratio": _round(self.throughput_ratio),
            "target_ratio": self.target_ratio,
            "slowest_sql": self.slowest_sql,
            "slowest_plan": self.slowest_plan,
            **self.extra,
        }


def _round(value):
    return None if value is None else round(value, 2)


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile; with few samples the p95 is the slowest one, which is honest."""
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * pct // 100))
    return ordered[int(rank) - 1]


def timed(call) -> tuple[float, object]:
    started = time.perf_counter()
    outcome = call()
    return (time.perf_counter() - started) * 1000, outcome


def counted(call) -> tuple[object, list[dict]]:
    """Run once, capturing the SQL it sent."""
    with CaptureQueriesContext(connection) as captured:
        outcome = call()
    return outcome, list(captured.captured_queries)


def explain_ms(sql: str) -> float:
    """Planning plus execution time of one statement, run for real by EXPLAIN ANALYZE. Per-node
    timing is off: its clock calls would inflate the floor of plans that touch many rows."""
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, TIMING OFF, FORMAT JSON) " + sql)
        plan = cursor.fetchone()[0]
    plan = plan[0] if isinstance(plan, list) else plan
    return plan["Planning Time"] + plan["Execution Time"]


def explain_text(sql: str) -> str:
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql)
        return "\n".join(row[0] for row in cursor.fetchall())


def database_floor(queries: list[dict], *, repeat: int = 3) -> tuple[float, str, str, list]:
    """What the request's SELECTs cost in the database alone: (ms, slowest SQL, its plan, and
    each statement's ms with the start of its SQL).

    The sum over the statements a request sent, each the median of `repeat` EXPLAIN ANALYZE
    runs, so the ratio of request time to this floor is the application's overhead.
    """
    total, slowest_ms, slowest_sql, each = 0.0, -1.0, "", []
    for query in queries:
        sql = query["sql"]
        if not sql.lstrip().upper().startswith("SELECT"):
            continue
        ms = statistics.median(explain_ms(sql) for _ in range(repeat))
        total += ms
        each.append({"ms": round(ms, 2), "sql": sql[:200]})
        if ms > slowest_ms:
            slowest_ms, slowest_sql = ms, sql
    return total, slowest_sql, explain_text(slowest_sql) if slowest_sql else "", each
