"""RecordBuffer: bounded ring, drop counting, and per-session slices."""

from __future__ import annotations

import sys
import threading

import pytest

from pytest_kari_debug.buffer import RecordBuffer


def test_ring_keeps_newest_and_counts_drops() -> None:
    """Past the limit the oldest records go, and each one is counted as dropped."""
    buffer: RecordBuffer[int] = RecordBuffer(3)
    for value in range(10):
        buffer.append(value)
    assert buffer.snapshot() == [7, 8, 9]
    assert (buffer.total, buffer.dropped, len(buffer)) == (10, 7, 3)


def test_clear_is_not_a_drop() -> None:
    """Clearing empties the ring without counting drops."""
    buffer: RecordBuffer[int] = RecordBuffer(5)
    for value in range(4):
        buffer.append(value)
    buffer.clear()
    buffer.append(99)
    assert buffer.snapshot() == [99]
    assert buffer.dropped == 0


def test_session_slices_are_separate_and_bounded() -> None:
    """Only records of an open session land in its slice, up to the limit, with a drop count;
    a full slice keeps the first record and the newest (limit 2: one of each)."""
    buffer: RecordBuffer[str] = RecordBuffer(2)
    buffer.open_session("a")
    for value in ("a1", "a2", "a3"):
        buffer.append(value, "a")
    buffer.append("b1", "b")  # session b is not open: ring only
    buffer.append("none")
    assert buffer.peek_session("a") == ["a1", "a3"]
    records, dropped = buffer.close_session("a")
    assert (records, dropped) == (["a1", "a3"], 1)
    assert buffer.close_session("a") == ([], 0)


@pytest.mark.parametrize(
    ("limit", "head", "tail"), [(100, 50, 50), (7, 3, 4), (1, 0, 1), (0, 0, 0)]
)
def test_a_full_slice_keeps_the_first_and_the_newest(limit: int, head: int, tail: int) -> None:
    """1,000 records at limit N: the first N//2 and the newest N - N//2, the rest counted."""
    buffer: RecordBuffer[int] = RecordBuffer(limit)
    buffer.open_session("s")
    for value in range(1000):
        buffer.append(value, "s")
    first, newest, dropped = buffer.close_session_parts("s")
    assert first == list(range(head))
    assert newest == list(range(1000 - tail, 1000)[:tail])
    assert dropped == 1000 - limit


@pytest.mark.parametrize("limit", range(6))
@pytest.mark.parametrize("count", range(8))
def test_a_slice_made_by_its_first_record_keeps_what_the_rule_says(limit: int, count: int) -> None:
    """The first record makes the slice with itself in the head (when the head holds one):
    the same records, order and drops as the rule: the first limit // 2, then the newest."""
    buffer: RecordBuffer[int] = RecordBuffer(limit)
    buffer.open_session("s")
    for value in range(count):
        buffer.append(value, "s")
    head_limit, tail_limit = limit // 2, limit - limit // 2
    rest = list(range(head_limit, count))
    kept_tail = rest[max(0, len(rest) - tail_limit) :] if tail_limit else []
    assert buffer.peek_session("s") == list(range(min(count, head_limit))) + kept_tail
    assert buffer.close_session_parts("s") == (
        list(range(min(count, head_limit))),
        kept_tail,
        len(rest) - len(kept_tail),
    )
    buffer.append(99, "s")  # closed: the ring only
    assert buffer.close_session("s") == ([], 0)
    assert buffer.snapshot()[-1:] == ([99] if limit else [])


def test_negative_limit_is_refused() -> None:
    """A negative limit is an error naming the value."""
    with pytest.raises(ValueError, match="-1"):
        RecordBuffer(-1)


def test_counts_are_exact_across_threads() -> None:
    """8 threads appending 10,000 records each: every record counted, none lost below the limit."""
    buffer: RecordBuffer[int] = RecordBuffer(100_000)
    _fill_at_once(buffer, 10_000)
    assert buffer.total == 80_000
    assert len(buffer) == 80_000
    assert len(set(buffer.snapshot())) == 80_000
    assert buffer.dropped == 0


def test_threads_filing_a_sessions_first_records_at_once_lose_none() -> None:
    """A session's slice is made by its first record: threads whose first records of one
    session arrive together share one slice (none is replaced by another's), and a record
    made after the session closed is not filed under it."""
    buffer: RecordBuffer[int] = RecordBuffer(100_000)
    for attempt in range(20):
        session = f"s{attempt}"
        buffer.open_session(session)
        _fill_at_once(buffer, 200, session)
        records, dropped = buffer.close_session(session)
        assert (len(records), dropped) == (1600, 0)
        buffer.append(-1, session)
        assert buffer.peek_session(session) == []
        assert buffer.close_session(session) == ([], 0)


def test_threads_filling_a_slices_tail_at_once_lose_none() -> None:
    """The tail past a slice's head is made by its first record: threads whose records pass
    the head together share one tail, so every record is kept or counted as dropped."""
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        _fill_tails_at_once()
    finally:
        sys.setswitchinterval(old)


def _fill_tails_at_once() -> None:
    for attempt in range(20):
        buffer: RecordBuffer[int] = RecordBuffer(40_000)
        session = f"s{attempt}"
        buffer.open_session(session)
        buffer.append(-1, session)
        _fill_at_once(buffer, 5000, session)
        head, tail, dropped = buffer.close_session_parts(session)
        assert (len(head), len(tail), dropped) == (20_000, 20_000, 1)
        assert len(set(head) | set(tail)) == 40_000


def _fill_at_once(
    buffer: RecordBuffer[int], each: int, session: str | None = None, threads: int = 8
) -> None:
    """*threads* threads append *each* distinct records to *buffer* (under *session*), all
    starting together."""
    start = threading.Barrier(threads)

    def fill(base: int) -> None:
        start.wait()
        for n in range(each):
            buffer.append(base + n, session)

    workers = [threading.Thread(target=fill, args=(each * t,)) for t in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
