"""Every writer writes any string: a lone surrogate is escaped, never a failure (issue 17 B)."""

from __future__ import annotations

import email
import email.policy
import json
from pathlib import Path
from typing import Any

from alert_servers import smtp_server
from prometheus_client.parser import text_string_to_metric_families

from pytest_kari_debug.api.stream import sse_event
from pytest_kari_debug.channels import Delivery, EmailNotificationChannel
from pytest_kari_debug.exporters.csv_export import write_csv
from pytest_kari_debug.exporters.jaeger import SpanBatch, write_jaeger
from pytest_kari_debug.exporters.json_export import build_run_document, write_run_json
from pytest_kari_debug.exporters.otlp import write_otlp_json
from pytest_kari_debug.exporters.prometheus import render
from pytest_kari_debug.storage import Store

NAME = "report-\udcff.csv"
ESCAPED = "report-\\udcff.csv"


def _test(nodeid: str = f"test_x.py::test_{NAME}") -> dict[str, Any]:
    return {
        "nodeid": nodeid,
        "extension_id": "ext",
        "outcome": "failed",
        "phases": {"call": 1.0},
        "duration_ms": 1.0,
        "session_id": "s1",
        "longrepr": f"unexpected file {NAME}",
        "collected_data": {
            "logging": {"records": [{"ts": 1.0, "level": "INFO", "message": NAME, "name": NAME}]}
        },
    }


def test_json_csv_jaeger_and_otlp_files(tmp_path: Path) -> None:
    """The run JSON, CSV, Jaeger and OTLP files are written and parse back."""
    run = {"uuid": "u", "started_at": 1.0, "args": [NAME]}
    write_run_json(tmp_path / "r.json", build_run_document(run, [_test()]))
    document = json.loads((tmp_path / "r.json").read_text(encoding="utf-8"))
    assert document["tests"][0]["longrepr"] == f"unexpected file {NAME}"  # the JSON escape
    write_csv(tmp_path / "r.csv", [{"m": NAME}], ["m"])
    assert ESCAPED in (tmp_path / "r.csv").read_text(encoding="utf-8")
    span = {
        "trace_id": "0" * 31 + "1", "span_id": "0" * 15 + "2", "parent_id": None,
        "name": NAME, "start": 1.0, "end": 2.0, "duration_ms": 1000.0, "status": "ok",
        "kind": "internal", "tags": {"file": NAME}, "events": [],
    }  # fmt: skip
    batch = SpanBatch(NAME, [span], {"host": NAME})
    write_jaeger(tmp_path / "j.json", [batch])
    write_otlp_json(tmp_path / "o.json", [batch])
    for name in ("j.json", "o.json"):
        assert NAME in (tmp_path / name).read_text(encoding="utf-8") or json.loads(
            (tmp_path / name).read_text(encoding="utf-8")
        )


def test_the_store_takes_any_string(tmp_path: Path) -> None:
    """SQLite gets test rows and record rows whose text holds a lone surrogate."""
    store = Store(tmp_path / "k.db")
    try:
        run_id = store.begin_run({"uuid": "u", "started_at": 1.0, "args": []})
        store.write_tests(run_id, [_test()])
        store.write_records("log", NAME, [{"ts": 1.0, "level": "INFO", "message": NAME}])
        nodeids = [t["nodeid"] for t in store.tests(run_id)]
    finally:
        store.close()
    assert nodeids == [f"test_x.py::test_{ESCAPED}"]


def test_prometheus_exposition_parses_back() -> None:
    """A test label holding a surrogate is written escaped; the Prometheus parser reads it."""
    text = render([_test()]).decode("utf-8")
    families = list(text_string_to_metric_families(text))
    tests = {s.labels.get("test") for f in families for s in f.samples}
    assert f"test_x.py::test_{ESCAPED}" in tests


def test_server_sent_events() -> None:
    """An SSE event with a surrogate in its data is bytes, with the surrogate escaped."""
    assert sse_event(json.dumps({"m": NAME}, ensure_ascii=False)) == (
        b'data: {"m": "report-\\udcff.csv"}\n\n'
    )


def test_email_is_sent() -> None:
    """An alert whose title and message hold a surrogate is mailed (real SMTP server)."""
    note = {
        "event": "firing",
        "extension_id": "ext",
        "alert": {"alert_id": "a", "severity": "high", "title": NAME, "message": NAME},
    }
    with smtp_server() as server:
        channel = EmailNotificationChannel(
            "m", "M", server.host, server.port, "k@example.com", ["d@example.com"], retries=0
        )
        delivery = Delivery("m", "email", "firing")
        channel.deliver(note, delivery, lambda s: False)
        assert delivery.status == "sent", delivery.error
        [message] = server.wait_for(1)
    parsed = email.message_from_bytes(message["data"], policy=email.policy.default)
    assert ESCAPED in str(parsed["Subject"])
    assert ESCAPED in parsed.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
