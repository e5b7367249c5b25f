"""The profiler's limits and the names of waiting and synthetic frames."""

from __future__ import annotations

import sys

PY312 = sys.version_info >= (3, 12)
RESERVOIR_SIZE = 512
MAX_TREE_DEPTH = 60
MAX_TREE_NODES = 400
MAX_HOT_FUNCTIONS = 25
MAX_HOT_PATHS = 10
MAX_AGG_FUNCTIONS = 5000
MAX_AGG_PATHS = 2000
MAX_KEPT_SESSIONS = 100
MAX_ADJUSTMENTS = 100
MAX_INTERVAL_S = 0.1
MAX_TIMING_EVERY = 4096
OVERHEAD_CHECK_CALLS = 256
OVERHEAD_WINDOW_S = 0.05
MEMORY_POLL_S = 0.005
MIN_SNAPSHOT_BYTES = 256 * 1024
MAX_SNAPSHOTS_PER_SESSION = 12
#: tracemalloc's own memory (about 60 bytes a traced block) above which the poller takes no
#: peak snapshot: grouping a snapshot of 600,000 blocks costs seconds of the run's time.
MAX_PEAK_SNAPSHOT_TRACE_BYTES = 16 * 1024 * 1024
CPROFILE_ROWS = 50
ASYNC_MODES = ("enabled", "disabled", "strict")
#: Functions whose self time is waiting (sleep, I/O, locks), not computing.
WAIT_FUNCTIONS = frozenset(
    {"sleep", "select", "poll", "epoll.poll", "kqueue.control", "recv", "recv_into", "recvfrom",
     "read", "readinto", "readline", "accept", "connect", "send", "sendall", "write", "wait",
     "acquire", "join", "getaddrinfo", "urlopen", "communicate", "[await]", "_run_once",
     "stat", "lstat", "open", "listdir", "scandir", "fsync", "flush", "create_connection"}
)  # fmt: skip
SYNTHETIC = frozenset({"[await]", "[out-of-context]", "[self]"})
