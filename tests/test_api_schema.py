"""The OpenAPI document fuzzed with schemathesis against a real server: no 5xx, all conform."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from api_support import EXT, live_manager, record_store
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from pytest_kari_debug.api import PREFIX, ApiServer, StreamSettings, create_app

LIVE = "fuzz-live-ext"
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    """A real server on 127.0.0.1 over a live manager and a store filled by a real run."""
    store = record_store(tmp_path_factory.mktemp("fuzz-store"))
    manager = live_manager(LIVE)
    api = ApiServer(
        manager=manager, store_path=store, include_registry=False,
        stream=StreamSettings(poll_seconds=0.05),
    ).start()  # fmt: skip
    yield api
    api.stop()
    manager.stop()


#: The app's own OpenAPI document; the log stream never ends, so it is tested on its own.
SPEC = create_app(include_registry=False).app.openapi()
SCHEMA = schemathesis.openapi.from_dict(SPEC).exclude(path_regex=r"/logs/stream$")


def _cases() -> list[Any]:
    """Every operation with valid input, and those taking input with invalid input too."""
    cases = []
    for result in SCHEMA.get_all_operations():
        operation = result.ok()
        raw = SPEC["paths"][operation.path][operation.method.lower()]
        modes = [GenerationMode.POSITIVE]
        if raw.get("parameters") or raw.get("requestBody"):
            modes.append(GenerationMode.NEGATIVE)
        for mode in modes:
            cases.append(pytest.param(operation, mode, id=f"{operation.label}-{mode.value}"))
    return cases


@pytest.mark.parametrize(("operation", "mode"), _cases())
def test_openapi_operations_conform(server: ApiServer, operation: Any, mode: Any) -> None:
    """Generated input (valid and invalid) gets documented answers, never a 5xx."""

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=10,
        deadline=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def run(case: Any) -> None:
        case.call_and_validate(base_url=server.url, checks=CHECKS)
        if "extension_id" in (case.path_parameters or {}):
            for known in (LIVE, EXT):  # also reach the answers of both data sources
                case.path_parameters["extension_id"] = known
                case.call_and_validate(base_url=server.url, checks=CHECKS)

    run()


def test_openapi_lists_every_seed_endpoint(server: ApiServer) -> None:
    """The OpenAPI document holds every endpoint of the seed's API section, with its method."""
    import httpx

    seed = (Path(__file__).resolve().parent.parent / "docs" / "seed-README.md").read_text()
    section = seed.split("## API Endpoints", 1)[1].split("\n## ", 1)[0]
    wanted = set()
    for line in section.splitlines():
        if line.startswith("- `"):
            method, path = line[3:].split("`", 1)[0].split(" ", 1)
            wanted.add((method.lower(), path))
    assert len(wanted) == 26
    spec = httpx.get(f"{server.url}/openapi.json", timeout=10).json()
    served = set()
    for path, item in spec["paths"].items():
        for method in item:
            served.add((method, path.replace("{kind}", "")))
    missing = {w for w in wanted if w not in served}
    assert not missing
    assert all(path.startswith(PREFIX) for _, path in wanted)
