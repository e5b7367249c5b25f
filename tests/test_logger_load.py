"""ExtensionLogger under load: many threads, a million records, bounded memory."""

from __future__ import annotations

import contextvars
import gc
import threading
import tracemalloc
from collections import Counter

from pytest_kari_debug.config import DebugConfiguration
from pytest_kari_debug.manager import ExtensionDebugManager

THREADS = 8
PER_THREAD = 10_000


def test_eight_threads_lose_nothing_below_the_limit() -> None:
    """8 threads x 10,000 records in one session: every record kept, counts exact."""
    manager = ExtensionDebugManager(
        "threads", configuration=DebugConfiguration(max_log_entries=THREADS * PER_THREAD)
    )
    logger = manager.get_logger()
    start = threading.Barrier(THREADS)

    def work(n: int) -> None:
        start.wait()
        with logger.correlation_context(f"t{n}"):
            for i in range(PER_THREAD):
                logger.info("tick", thread_no=n, i=i)

    with manager.debug_session() as session_id:
        threads = []
        for n in range(THREADS):
            context = contextvars.copy_context()  # threads started inside the session
            threads.append(threading.Thread(target=context.run, args=(work, n)))
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    session = manager.get_session(session_id)
    assert session is not None
    data = session.collected_data["logging"]
    assert data["dropped"] == 0
    assert len(data["records"]) == THREADS * PER_THREAD
    per_thread = Counter(r["fields"]["thread_no"] for r in data["records"])
    assert per_thread == dict.fromkeys(range(THREADS), PER_THREAD)
    for n in range(THREADS):
        seen = [r["fields"]["i"] for r in data["records"] if r["fields"]["thread_no"] == n]
        assert seen == list(range(PER_THREAD))  # in order within a thread, none twice
    assert all(r["correlation_id"] == f"t{r['fields']['thread_no']}" for r in data["records"])
    stats = logger.stats()
    assert (stats["records"], stats["recorded"], stats["dropped"]) == (80_000, 80_000, 0)
    assert len({r.seq for r in logger.get_logs()}) == 80_000


def test_a_million_records_stay_bounded() -> None:
    """1,000,000 records leave max_log_entries kept, exact drop counts, flat memory.

    Measured with tracemalloc: memory held after 1,000,000 records is within 256 KiB of the
    memory held once the ring first filled (10,000 records); figures in the issue note.
    """
    limit = 1000
    manager = ExtensionDebugManager(
        "million", configuration=DebugConfiguration(max_log_entries=limit)
    )
    logger = manager.get_logger()
    info = logger.info
    gc.collect()
    tracemalloc.start()
    try:
        with manager.debug_session() as session_id:
            for i in range(10_000):
                info("record", i=i, text="x" * 20)
            gc.collect()
            filled, _ = tracemalloc.get_traced_memory()
            for i in range(10_000, 1_000_000):
                info("record", i=i, text="x" * 20)
            gc.collect()
            after, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(logger.records) == limit
    assert logger.records.dropped == 1_000_000 - limit
    assert manager.get_debug_summary()["dropped"]["logging"] == 1_000_000 - limit
    session = manager.get_session(session_id)
    assert session is not None
    assert session.collected_data["logging"]["dropped"] == 1_000_000 - limit
    kept = session.collected_data["logging"]["records"]
    assert len(kept) == limit + 1  # and the marker where the middle was dropped
    assert (kept[0]["fields"]["i"], kept[-1]["fields"]["i"]) == (0, 999_999)
    assert logger.get_logs(limit=1)[0].fields["i"] == 999_999
    print(f"tracemalloc: filled={filled} after={after} peak={peak} bytes")
    assert after - filled < 256 * 1024, (filled, after, peak)
