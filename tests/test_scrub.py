"""Secrets in text are scrubbed before storage: canaries grepped across every output."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from api_support import framework_client, parse_sse, split_lines

from pytest_kari_debug.api import PREFIX, ApiServer, StreamSettings, create_app
from pytest_kari_debug.config import DebugConfiguration
from pytest_kari_debug.exceptions import ConfigurationError
from pytest_kari_debug.manager import ExtensionDebugManager
from pytest_kari_debug.scrub import (
    _ASSIGNED,
    REDACTED,
    TextScrubber,
    _compile,
    _replace,
    scrub_text,
)

# Each canary is built at run time so that no source line of a test holds it whole.
JWT = "eyJ" + "hbGciOiJIUzI1NiJ9" + ".eyJzdWIiOiJjYW5hcnkifQ" + ".c2lnbmF0dXJlY2FuYXJ5"
AWS = "AKIA" + "IOSFODNN7CANARY1"
PASSWORD = "hunter2" + "canary"
KEY_BODY = "MIIcanary" + "privatekeybody"
USERINFO = "pw" + "-canary-userinfo"
BASIC = "dXNlcjpjYW5hcnk" + "tYmFzaWM="
USER_SECRET = "tenant-" + "424242"
CANARIES = (JWT, AWS, PASSWORD, KEY_BODY, USERINFO, BASIC, USER_SECRET)
PRIVATE_KEY = f"-----BEGIN RSA PRIVATE KEY-----\n{KEY_BODY}\n-----END RSA PRIVATE KEY-----"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"Authorization: Bearer {JWT}", f"Authorization: Bearer {REDACTED}"),
        (f"token {JWT} used", f"token {REDACTED} used"),
        (f"jwt={JWT}", f"jwt={REDACTED}"),
        (f"key {AWS} in use", f"key {REDACTED} in use"),
        (f"login password={PASSWORD} ok", f"login password={REDACTED} ok"),
        (f'{{"db_password": "{PASSWORD}"}}', f'{{"db_password": {REDACTED}}}'),
        (PRIVATE_KEY, f"-----BEGIN RSA PRIVATE KEY-----{REDACTED}-----END RSA PRIVATE KEY-----"),
        (f"GET https://bob:{USERINFO}@example.com/x", f"GET https://{REDACTED}@example.com/x"),
        (f"Authorization: Basic {BASIC}", f"Authorization: Basic {REDACTED}"),
        ("max_tokens=5 and a basic idea", "max_tokens=5 and a basic idea"),
    ],
)
def test_builtin_patterns(text: str, expected: str) -> None:
    """Each built-in pattern replaces the secret and keeps the words around it."""
    assert scrub_text(text) == expected


def _every_pattern(text: str) -> str:
    """*text* through every built-in pattern, in the scrubber's order, none skipped."""
    built = _compile()
    for pattern in (built.key, built.jwt, built.userinfo, built.aws, built.credentials,
                    built.assignment):  # fmt: skip
        text = pattern.sub(_replace, text)
    return text


def test_the_patterns_are_compiled_when_a_first_text_is_scrubbed() -> None:
    """Importing the module or making a scrubber compiles no pattern (many runs scrub no
    text); the first text scrubbed compiles them, once."""
    code = (
        "import pytest_kari_debug.scrub as scrub\n"
        "scrubber = scrub.scrubber_for(())\n"
        "assert scrub._compiled is None\n"
        f"assert scrubber.scrub('password=hunter22') == 'password={REDACTED}'\n"
        "built = scrub._compiled\n"
        "assert built is not None and scrub.scrub_text('x') == 'x' and scrub._compiled is built\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr


_WORDS = (*_ASSIGNED, "bearer", "basic", "pass", "api", "access", "PassWord", "API-KEY", "Token")


@pytest.mark.parametrize("word", _WORDS)
@pytest.mark.parametrize(
    "shape", ["{w}={v}", "x {w}: '{v}' y", "{w} {v}", "no{w}here", "{w}", "a={w}", "{w}:x\n2"]
)
def test_the_patterns_a_text_skips_would_not_change_it(word: str, shape: str) -> None:
    """The cheap checks that choose the patterns worth trying on a text (the word checks of
    assignments first) give the output of trying every pattern."""
    text = shape.format(w=word, v=PASSWORD)
    for variant in (text, text.upper(), text.lower(), f"WARNING  app:x.py:12 {text}"):
        assert TextScrubber().scrub(variant) == _every_pattern(variant)


def test_a_text_scrubbed_once_is_scrubbed_and_not_remembered() -> None:
    """A test's captured output or failure text (unique by its line numbers) is scrubbed as
    any text is, but a clean one does not fill the cache of the log messages that repeat."""
    scrubber = TextScrubber()
    secret = f"x.py:12 login password={PASSWORD} ok"
    assert scrubber.scrub_once(secret) == scrubber.scrub(secret) == _every_pattern(secret)
    clean = "WARNING  app:x.py:12 caught 10000"
    assert scrubber.scrub_once(clean) == clean
    assert clean not in scrubber.known_clean
    assert scrubber.scrub(clean) == clean
    assert clean in scrubber.known_clean
    assert scrubber.scrub_once(clean) == clean


def test_user_patterns_and_their_errors() -> None:
    """kari_redact_patterns add regular expressions; a bad one is a clear error at entry."""
    assert TextScrubber([r"tenant-\d+"]).scrub(f"for {USER_SECRET}.") == f"for {REDACTED}."
    assert TextScrubber([r"id=(\d+)"]).scrub("id=77 ok") == f"id={REDACTED} ok"
    with pytest.raises(ConfigurationError, match=r"'\(unclosed' is not a regular expression"):
        DebugConfiguration(redact_patterns=("(unclosed",))
    with pytest.raises(ConfigurationError, match="matches the empty text"):
        DebugConfiguration(redact_patterns=("x*",))


def test_a_bad_ini_pattern_is_a_usage_error(pytester: pytest.Pytester) -> None:
    """A pattern that does not compile stops the run at start-up, naming it."""
    pytester.makeini("[pytest]\nkari_redact_patterns =\n    ok-\\d+\n    (unclosed\n")
    pytester.makepyfile("def test_ok(): pass")
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*redact pattern '(unclosed' is not a regular expression*"])


CANARY_TESTS = f"""
import logging

import pytest

JWT = {JWT[:10]!r} + {JWT[10:]!r}
AWS = {AWS[:6]!r} + {AWS[6:]!r}
PASSWORD = {PASSWORD[:4]!r} + {PASSWORD[4:]!r}
PRIVATE_KEY = {PRIVATE_KEY[:40]!r} + {PRIVATE_KEY[40:]!r}
USERINFO = {USERINFO[:3]!r} + {USERINFO[3:]!r}
BASIC = {BASIC[:5]!r} + {BASIC[5:]!r}
USER_SECRET = {USER_SECRET[:5]!r} + {USER_SECRET[5:]!r}


def test_logs(kari_logger, kari_tracer):
    kari_logger.info("calling with Authorization: Bearer " + JWT)
    kari_logger.warning("aws key " + AWS + " and password=" + PASSWORD, note="for " + USER_SECRET)
    logging.getLogger("app").error("key: " + PRIVATE_KEY)
    kari_logger.info("fetch https://bob:" + USERINFO + "@example.com/data")
    with kari_tracer.start_span("call") as span:
        span.add_event("sent", {{"header": "Basic " + BASIC}})


def test_fails():
    raise RuntimeError("request failed with Bearer " + JWT + " for " + USER_SECRET)


def test_assert():
    accepted = False
    assert accepted, "login password=" + PASSWORD + " rejected"


def test_error(kari_errors):
    kari_errors.record_error("AuthError", "rejected key " + AWS, context={{"why": PRIVATE_KEY}})
"""


def _grep(folder: Path) -> dict[str, list[str]]:
    """Every canary found in a file under *folder* (bytes, and the store's dumped rows)."""
    found: dict[str, list[str]] = {}
    for path in folder.rglob("*"):
        if not path.is_file() or path.suffix == ".py" or path.name == "pytest.ini":
            continue
        data = path.read_bytes()
        hits = [c for c in CANARIES if c.encode() in data]
        if path.suffix == ".db":
            with sqlite3.connect(path) as db:  # rows still in the WAL are read too
                dump = "\n".join(db.iterdump())
            hits += [c for c in CANARIES if c in dump]
        if hits:
            found[str(path.relative_to(folder))] = hits
    return found


def test_canaries_appear_in_no_output_of_a_run(pytester: pytest.Pytester) -> None:
    """Bearer/basic tokens, JWTs, AWS keys, password=, private keys, URL userinfo and a user
    pattern in messages, exceptions and failure text: absent from the JSON, report, CSV,
    store, Jaeger and OTLP files (case G)."""
    pytester.makeini("[pytest]\nkari_redact_patterns =\n    tenant-\\d+\n")
    pytester.makepyfile(test_canary=CANARY_TESTS)
    result = pytester.runpytest(
        "--kari-trace", "--kari-json=out/run.json", "--kari-report=out/report.html",
        "--kari-csv=out/csv", "--kari-store=out/kari.db", "--kari-jaeger=out/jaeger.json",
        "--kari-otlp-json=out/otlp.json",
    )  # fmt: skip
    result.assert_outcomes(passed=2, failed=2)
    outputs = {p.name for p in (pytester.path / "out").rglob("*") if p.is_file()}
    assert {"run.json", "report.html", "kari.db", "jaeger.json", "otlp.json", "logs.csv"} <= outputs
    assert "errors.csv" in outputs
    assert _grep(pytester.path / "out") == {}
    assert REDACTED in (pytester.path / "out" / "run.json").read_text(encoding="utf-8")
    # The plugin's own summary only: pytest's short test summary quotes the exception as
    # raised, and does so untruncated when CI is set.
    terminal = result.stdout.str()
    own_summary = terminal.split("kari-debug ==")[-1].split("short test summary info")[0]
    assert "2 failed, 2 passed" in own_summary
    assert [c for c in CANARIES if c in own_summary] == []


def _log_canaries(manager: ExtensionDebugManager) -> None:
    logger = manager.get_logger()
    logger.info(f"calling with Authorization: Bearer {JWT}")
    logger.warning(f"aws key {AWS} and password={PASSWORD}", note=f"for {USER_SECRET}")
    logger.error(f"key: {PRIVATE_KEY}")
    try:
        raise RuntimeError(f"failed with Basic {BASIC} at https://bob:{USERINFO}@example.com")
    except RuntimeError:
        logger.exception("request failed")


@pytest.fixture
def scrubbed_manager() -> Any:
    manager = ExtensionDebugManager(
        "canary-ext", configuration=DebugConfiguration(redact_patterns=(r"tenant-\d+",))
    )
    _log_canaries(manager)
    yield manager
    manager.stop()


def test_canaries_appear_in_no_api_export(scrubbed_manager: ExtensionDebugManager) -> None:
    """The REST exports (JSON, CSV) of a live manager hold none of the canaries."""
    app = create_app(scrubbed_manager, include_registry=False)
    with framework_client(app) as client:
        bodies = [
            client.get(f"{PREFIX}/export/canary-ext/all").content,
            client.get(f"{PREFIX}/export/canary-ext/logs", params={"format": "csv"}).content,
            client.get(f"{PREFIX}/export/canary-ext/errors").content,
        ]
    assert all(bodies)
    assert [c for c in CANARIES for body in bodies if c.encode() in body] == []


def test_canaries_appear_in_no_sse_event(scrubbed_manager: ExtensionDebugManager) -> None:
    """The live log stream (server-sent events) holds none of the canaries."""
    server = ApiServer(
        manager=scrubbed_manager, include_registry=False,
        stream=StreamSettings(poll_seconds=0.05),
    ).start()  # fmt: skip
    try:
        url = f"{server.url}{PREFIX}/dashboard/canary-ext/logs/stream"
        with (
            httpx.Client(timeout=20.0) as client,
            client.stream("GET", url, params={"backlog": 10}) as response,
        ):
            events = parse_sse(split_lines(response.iter_raw()))
            logs = []
            while len(logs) < 4:
                event = next(events)
                if event.event == "log":
                    logs.append(event.data)
    finally:
        server.stop()
    text = "\n".join(logs)
    assert REDACTED in text
    assert [c for c in CANARIES if c in text] == []
