"""Schemathesis fuzzes every operation of /v1/openapi.json on a live test server with a token.

It must find no server error, and every response (status code, content type, headers, body)
must match the schema. `SCHEMATHESIS_MAX_EXAMPLES` (default 20) sets how hard it tries.
"""

import os
import subprocess
import sys

import pytest

from django.core.cache import cache

from console.models import AccessToken
from firmware import services as firmware_services
from firmware.models import Rollout
from firmware.services import rollouts
from tests.factories import DeviceFactory, FirmwareFactory, GroupFactory, make_personas

CHECKS = ",".join(
    [
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_headers_conformance",
        "response_schema_conformance",
        "negative_data_rejection",
        "missing_required_header",
        "unsupported_method",
        "use_after_free",
        "ignored_auth",
    ]
)
# Not run: positive_data_acceptance (API.md answers 400 to schema-valid bodies that break a
# rule the schema cannot state, e.g. an unknown firmware version) and ensure_resource_availability
# (it reads the ids sent to the device import as created resources).


@pytest.mark.schema
def test_schemathesis_finds_no_server_error_and_every_response_matches_the_schema(
    transactional_db, live_server, tmp_path
):
    cache.clear()
    personas = make_personas()
    devices = [DeviceFactory(product=personas.product, firmware_version=3) for _ in range(4)]
    GroupFactory(product=personas.product, name="europe", devices=devices[:2])
    FirmwareFactory(product=personas.product, version=3)
    # A running rollout, whose id the rollout operations are given, so their answers are checked too.
    rollout_to = GroupFactory(product=personas.product, name="rollout-fleet", devices=devices[2:])
    spec = rollouts.rollout_spec(product=personas.product, stages="50%, 100%")
    firmware_services.firmware_release(
        firmware=FirmwareFactory(product=personas.product, version=4, ever_released=True), groups=[rollout_to],
        rollout=spec, actor=personas.admin,
    )
    _token, raw, _refresh = AccessToken.issue(user=personas.admin)
    config = tmp_path / "schemathesis.toml"
    config.write_text(f'[parameters]\n"path.product" = "acme"\n"path.rollout_id" = {Rollout.objects.get().pk}\n')

    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "schemathesis.cli",
            "--config-file",
            str(config),
            "run",
            f"{live_server.url}/v1/openapi.json",
            "--header",
            f"Authorization: Bearer {raw}",
            # Revoking the token would end the run; tests/api/test_auth.py covers it.
            "--exclude-path",
            "/v1/access_tokens/current",
            "--checks",
            CHECKS,
            "--max-examples",
            os.environ.get("SCHEMATHESIS_MAX_EXAMPLES", "20"),
            "--phases",
            "examples,coverage,fuzzing,stateful",
            "--workers",
            "1",
            "--seed",
            os.environ.get("SCHEMATHESIS_SEED", "1"),
            "--no-color",
        ],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=tmp_path,
    )

    assert run.returncode == 0, run.stdout[-20000:] + run.stderr[-5000:]
    assert "Server error" not in run.stdout
