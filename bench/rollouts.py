"""Staged rollouts at fleet scale (issue 14): starting one with its preview, the rollout page's data,
a failure report that halts one, and the handshake's cost with a rollout live.

Every scenario leaves the fleet as it found it: a rollout started is aborted (nothing was offered,
so no device is kept on its version), and the rows a scenario adds (updates, samples) are its own.
"""

import statistics
import time

from django.db import connection
from django.db.models import Count

from bench import fleet as fleet_module
from bench.measure import WrongAnswer
from bench.scenarios import Bench, Scenario

STAGES = "1%, 10%, 100%"
# What the rollout page reads: a day of samples at one a minute, and failure reports with reasons.
SAMPLES = 1440
FAILED_UPDATES = 2000
REASONS = ["flash write error", "battery low", "checksum mismatch", "timeout downloading", "bootloop detected",
           "out of space", "signature rejected"]


def _staged_version(bench: Bench):
    """v49 as the product default, staged (it is released to some groups already, so the default is
    what the staged release adds: every device without a group release is targeted)."""
    from firmware.models import Firmware

    firmware = Firmware.objects.get(product=bench.product, version=fleet_module.DEFAULT_VERSION + 9)
    kept = [group for group in bench.groups.values() if group.released_firmware_id == firmware.id]
    return firmware, kept


def _abort_live(bench: Bench) -> None:
    from firmware.services import rollouts

    live = rollouts.live_rollout(bench.product)
    if live is not None:
        rollouts.rollout_act(rollout=live, action="abort", actor=bench.user)


def _preview(bench: Bench):
    """The confirmation's preview: the plan of the staged release and its impact by stage."""
    from firmware import services
    from firmware.services import rollouts

    firmware, kept = _staged_version(bench)
    spec = rollouts.rollout_spec(product=bench.product, stages=STAGES)
    return services.release_plan(firmware=firmware, groups=kept, product_default=True, rollout=spec).impact()


def _release(bench: Bench):
    """The confirmed release: planned again under the locks, the rollout started."""
    from firmware import services
    from firmware.services import rollouts

    firmware, kept = _staged_version(bench)
    spec = rollouts.rollout_spec(product=bench.product, stages=STAGES)
    services.firmware_release(firmware=firmware, groups=kept, product_default=True, rollout=spec,
                                     actor=bench.user)
    return rollouts.live_rollout(bench.product)


def _start(bench: Bench):
    preview = _preview(bench)
    _release(bench)
    return preview


def _live_with_history(bench: Bench):
    """A running rollout with a day of samples and failure reports, as the page would meet it."""
    from firmware.models import Rollout, RolloutStage
    from firmware.services import rollouts

    _abort_live(bench)
    _start(bench)
    rollout = rollouts.live_rollout(bench.product)
    with connection.cursor() as cursor:
        cursor.execute(
            """INSERT INTO firmware_rolloutsample (rollout_id, at, offered, updated, failed)
               SELECT %s, now() - (n || ' minutes')::interval, 10 * (%s - n), 9 * (%s - n), (%s - n) / 10
               FROM generate_series(1, %s) AS n""",
            [rollout.pk, SAMPLES, SAMPLES, SAMPLES, SAMPLES],
        )
        cursor.execute(
            """INSERT INTO firmware_firmwareupdate (product_id, device_id, from_version, to_version, status, reason,
                   created_at, finished_at, rollout_id, stage)
               SELECT %s, d.id, d.firmware_version, %s, 'failed', (%s::text[])[1 + (d.id %% %s)],
                   now() - interval '1 hour', now(), %s, 0
               FROM devices_device d WHERE d.product_id = %s ORDER BY d.id LIMIT %s""",
            [bench.product.id, rollout.firmware.version, REASONS, len(REASONS), rollout.pk, bench.product.id,
             FAILED_UPDATES],
        )
    RolloutStage.objects.filter(rollout=rollout, index=0).update(offered=40_000, updated=36_000, failed=FAILED_UPDATES,
                                                                 max_failure_percent=10)
    return Rollout.objects.get(pk=rollout.pk)


def page_data(bench: Bench) -> dict:
    """What the rollout page reads (firmware.services.rollouts and the models): the live rollout,
    its stages with their groups, the samples for the chart, the top failure reasons, the action
    impacts."""
    from firmware.models import FirmwareUpdate
    from firmware.services import rollouts

    rollout = rollouts.live_rollout(bench.product)
    stages = list(rollout.stages.prefetch_related("groups"))
    samples = list(rollout.samples.order_by("at").values_list("at", "offered", "updated", "failed"))
    reasons = list(FirmwareUpdate.objects.filter(rollout=rollout, status=FirmwareUpdate.Status.FAILED)
                   .values("reason").annotate(n=Count("id")).order_by("-n", "reason")[:5])
    actions = {action: rollouts.action_impact(rollout, action) for action in rollouts.ACTIONS}
    return {"rollout": rollout, "stages": stages, "samples": samples, "reasons": reasons, "actions": actions}


def _check_page(outcome):
    if len(outcome["samples"]) < SAMPLES or not outcome["reasons"] or len(outcome["stages"]) != 3:
        raise WrongAnswer(f"page data incomplete: {len(outcome['samples'])} samples, {outcome['reasons'][:1]}")
    if len(outcome["reasons"]) != 5 or outcome["reasons"][0]["n"] < FAILED_UPDATES // len(REASONS):
        raise WrongAnswer(f"top failure reasons wrong: {outcome['reasons']}")


def _page_call(bench: Bench, *, htmx: bool):
    """A GET of the live rollout's page (`/products/<product>/firmware/rollouts/<id>/`), the whole
    page or the region it polls while the rollout runs."""
    from firmware.services import rollouts

    headers = {"HX-Request": "true"} if htmx else {}

    def call():
        rollout = rollouts.live_rollout(bench.product)
        return bench.console.get(f"/products/{fleet_module.PRODUCT_SLUG}/firmware/rollouts/{rollout.pk}/",
                                 headers=headers)

    return call


def _check_html(response):
    if response.status_code != 200 or sum(reason.encode() in response.content for reason in REASONS) != 5:
        raise WrongAnswer(f"HTTP {response.status_code}, or the top failure reasons are not on the page")


class Halting:
    """Before each call, one device of the live rollout is offered its version (a pending update in
    stage 1) and the stage's counters are set so that one more failure passes the gate; the call is
    that device's failure report, which halts the rollout."""

    def __init__(self, bench: Bench):
        self.bench, self.devices, self.device = bench, [], None

    def prepare(self):
        from devices.models import Device

        rollout = _live_with_history(self.bench)
        self.rollout = rollout
        self.devices = list(Device.objects.filter(product=self.bench.product, development=False,
                                                  desired_firmware_version__isnull=True)
                            .order_by("-id").values_list("id", flat=True)[:200])

    def reset(self):
        from devices.models import Device
        from firmware.models import FirmwareUpdate, Rollout, RolloutStage

        pk = self.devices.pop()
        Rollout.objects.filter(pk=self.rollout.pk).update(status=Rollout.Status.RUNNING, halted_reason="")
        RolloutStage.objects.filter(rollout=self.rollout, index=0).update(
            offered=1000, failed=50, acknowledged_failed=0, acknowledged_offered=0, max_failure_percent=5)
        FirmwareUpdate.objects.create(product=self.bench.product, device_id=pk, from_version=None,
                                      to_version=self.rollout.firmware.version, rollout=self.rollout, stage=0)
        Device.objects.filter(pk=pk).update(rollout=self.rollout)
        self.device = Device.objects.select_related("product").get(pk=pk)

    def __call__(self):
        from firmware import services

        services.device_update_failed(device=self.device, version=self.rollout.firmware.version, reason="bench")
        return self.rollout

    def check(self, rollout):
        from firmware.models import Rollout

        if Rollout.objects.get(pk=rollout.pk).status != Rollout.Status.HALTED:
            raise WrongAnswer("the failure past the gate did not halt the rollout")


def _forget_previews() -> None:
    """Each preview counted afresh (a preview's figures are kept for the release that follows)."""
    from django.core.cache import cache

    cache.clear()


def scenarios(bench: Bench) -> list[Scenario]:
    halting = Halting(bench)

    def check_start(preview):
        if not preview.total or len(preview.by_stage) != 3:
            raise WrongAnswer(f"the preview counts {preview.total} devices in {len(preview.by_stage)} stages")

    def check_started(rollout):
        if rollout is None or sum(rollout.stages.values_list("targeted", flat=True)) == 0:
            raise WrongAnswer("no rollout started, or its stages target no device")

    name = f"staged release ({STAGES}) of v{fleet_module.DEFAULT_VERSION + 9} as product default, whole fleet"
    return [
        Scenario(f"rollout: {name}: preview and start (service)", "service",
                 lambda: _start(bench), check=check_start, target_ms=2000.0, repeat=5,
                 reset=lambda: _abort_live(bench), cleanup=lambda: _abort_live(bench)),
        Scenario(f"rollout: {name}: the preview alone (service)", "service",
                 lambda: _preview(bench), check=check_start, repeat=5, prepare=lambda: _abort_live(bench),
                 reset=_forget_previews),
        Scenario(f"rollout: {name}: the start alone (service)", "service",
                 lambda: _release(bench), check=check_started, repeat=5,
                 reset=lambda: _abort_live(bench), cleanup=lambda: _abort_live(bench)),
        Scenario(f"rollout: the rollout page's data ({SAMPLES:,} samples, {FAILED_UPDATES:,} failed updates;"
                 " service reads)", "service",
                 lambda: page_data(bench), check=_check_page, target_ms=150.0, floor=True,
                 prepare=lambda: _live_with_history(bench), cleanup=lambda: _abort_live(bench)),
        Scenario(f"rollout: the rollout page ({SAMPLES:,} samples, {FAILED_UPDATES:,} failed updates; console)",
                 "console", _page_call(bench, htmx=False), check=_check_html, target_ms=150.0, floor=True,
                 prepare=lambda: _live_with_history(bench), cleanup=lambda: _abort_live(bench)),
        Scenario(f"rollout: the rollout page's polled region ({SAMPLES:,} samples; console, htmx)",
                 "console", _page_call(bench, htmx=True), check=_check_html, target_ms=150.0, floor=True,
                 prepare=lambda: _live_with_history(bench), cleanup=lambda: _abort_live(bench)),
        Scenario(f"rollout: a failure report that halts the rollout ({bench.fleet.devices:,} devices; service)",
                 "service", halting, check=halting.check, repeat=15, prepare=halting.prepare, reset=halting.reset,
                 cleanup=lambda: _abort_live(bench)),
    ]


def _set_state(bench: Bench, state: str) -> None:
    _abort_live(bench)
    if state == "with":
        _start(bench)


def handshake_cost(bench: Bench, *, rounds: int = 6, load_pairs: int = 2, seconds: int = 10, connections: int = 16,
                   workers: int = 4):
    """The common handshake's cost with a rollout live and without: in process through the WSGI
    application (`bench.load.breakdown`) over the same 1,000 devices, and the throughput under
    load (`bench.load.handshake_throughput`), the two states alternating, each first in turn."""
    from bench.fleet import issue_bench_keys
    from bench.load import breakdown, handshake_throughput
    from bench.measure import Result

    result = Result("rollout: handshake cost with a rollout running vs without", "load")
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT id, device_id, firmware_version FROM devices_device WHERE product_id = %s AND id %% 97 = 5"
            " ORDER BY id LIMIT 1000", [bench.product.id])
        rows = cursor.fetchall()
        issue_bench_keys(cursor, bench.product.id, [row[0] for row in rows])
    devices = [(device_id, version) for _pk, device_id, version in rows]
    runs = {"without": [], "with": []}
    loads = {"without": [], "with": []}
    started = time.monotonic()
    try:
        for round_ in range(rounds):
            for state in (("without", "with") if round_ % 2 == 0 else ("with", "without")):
                _set_state(bench, state)
                runs[state].append(breakdown(devices))
        for pair in range(load_pairs):
            for state in (("without", "with") if pair % 2 == 0 else ("with", "without")):
                _set_state(bench, state)
                measured = handshake_throughput(bench, seconds=seconds, connections=connections, workers=workers)
                if measured.status == "ok":
                    loads[state].append({"handshake_rps": measured.extra["handshake_rps"],
                                         "ping_rps": measured.extra["ping_rps"]})
    finally:
        _abort_live(bench)
    median = statistics.median
    keys = ("python_cpu_ms", "statement_round_trip_ms", "statement_round_trip_without_commit_wait_ms",
            "postgresql_execution_ms")
    figures = {state: {key: round(median(run[key] for run in runs[state]), 3) for key in keys} for state in runs}
    for state in loads:
        if loads[state]:
            figures[state]["handshakes_per_second"] = round(median(run["handshake_rps"] for run in loads[state]))
            figures[state]["throughput_ratio_to_trivial_view"] = round(
                median(run["handshake_rps"] / run["ping_rps"] for run in loads[state]), 3)
    ratios = {key: round(figures["with"][key] / figures["without"][key], 3)
              for key in figures["with"] if figures["without"].get(key)}
    result.samples_ms = [figures["with"]["statement_round_trip_without_commit_wait_ms"]]
    result.detail = (f"{rounds} alternating rounds in process and {load_pairs} pairs under load in "
                     f"{time.monotonic() - started:.0f} s; medians without / with a rollout: "
                     + "; ".join(f"{key} {figures['without'].get(key)} / {figures['with'].get(key)} "
                                 f"(×{ratios.get(key, 0):.2f})" for key in figures["with"]))
    result.extra = {"figures": figures, "ratios": ratios, "runs": runs, "loads": loads}
    return result
