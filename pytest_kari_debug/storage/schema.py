"""The store's schema: one list of migrations for SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

DEFAULT_STORE = Path(".kari-debug") / "kari.db"

#: Schema migrations; the schema version is the number of migrations applied.
MIGRATIONS: list[str] = [
    """
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE runs (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        uuid TEXT NOT NULL UNIQUE,
        started_at REAL NOT NULL,
        finished_at REAL,
        exit_status INTEGER,
        rootdir TEXT,
        args TEXT,
        git_commit TEXT,
        git_branch TEXT,
        host TEXT,
        python_version TEXT,
        pytest_version TEXT,
        plugin_version TEXT,
        data TEXT NOT NULL DEFAULT '{}'
    );
    CREATE TABLE tests (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        run_id INTEGER NOT NULL REFERENCES runs(id),
        nodeid TEXT NOT NULL,
        extension_id TEXT NOT NULL,
        outcome TEXT NOT NULL,
        started_at REAL,
        finished_at REAL,
        duration_ms REAL,
        setup_ms REAL,
        call_ms REAL,
        teardown_ms REAL,
        session_id TEXT,
        data TEXT NOT NULL DEFAULT '{}'
    );
    CREATE INDEX tests_run ON tests(run_id);
    CREATE INDEX tests_nodeid ON tests(nodeid);
    CREATE TABLE records (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        run_id INTEGER REFERENCES runs(id),
        test_id INTEGER REFERENCES tests(id),
        kind TEXT NOT NULL,
        ts REAL,
        extension_id TEXT NOT NULL,
        session_id TEXT,
        name TEXT,
        level TEXT,
        value REAL,
        data TEXT NOT NULL
    );
    CREATE INDEX records_kind ON records(kind, extension_id, ts);
    CREATE INDEX records_test ON records(test_id);
    """,
    # Error groups across runs (issue #5): one row per (extension, fingerprint), with its
    # resolution status, and one row per run it occurred in.
    """
    CREATE TABLE error_groups (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        extension_id TEXT NOT NULL,
        fingerprint TEXT NOT NULL,
        error_type TEXT NOT NULL,
        message TEXT,
        template TEXT,
        category TEXT,
        culprit TEXT,
        first_seen_run INTEGER REFERENCES runs(id),
        first_seen_ts REAL,
        last_seen_run INTEGER REFERENCES runs(id),
        last_seen_ts REAL,
        count INTEGER NOT NULL DEFAULT 0,
        runs_seen INTEGER NOT NULL DEFAULT 0,
        status TEXT NOT NULL DEFAULT 'unresolved',
        resolved_at REAL,
        resolved_run INTEGER,
        notes TEXT,
        regressed INTEGER NOT NULL DEFAULT 0,
        regressed_at REAL,
        regressed_run INTEGER,
        regressions INTEGER NOT NULL DEFAULT 0,
        data TEXT NOT NULL DEFAULT '{}',
        UNIQUE (extension_id, fingerprint)
    );
    CREATE INDEX error_groups_status ON error_groups(extension_id, status);
    CREATE TABLE error_group_runs (
        group_id INTEGER NOT NULL REFERENCES error_groups(id),
        run_id INTEGER NOT NULL REFERENCES runs(id),
        count INTEGER NOT NULL,
        tests INTEGER NOT NULL DEFAULT 0,
        first_ts REAL,
        last_ts REAL,
        PRIMARY KEY (group_id, run_id)
    );
    CREATE INDEX error_group_runs_run ON error_group_runs(run_id);
    """,
    # Regression baselines (issue #10): the figures of every test under a name.
    """
    CREATE TABLE baselines (
        name TEXT PRIMARY KEY,
        created_at REAL NOT NULL,
        run_id INTEGER REFERENCES runs(id),
        data TEXT NOT NULL
    );
    """,
    # Resolutions of error groups and alerts, set by `kari-debug ... resolve` (issue 11).
    """
    CREATE TABLE resolutions (
        kind TEXT NOT NULL,
        extension_id TEXT NOT NULL,
        key TEXT NOT NULL,
        resolved_at REAL NOT NULL,
        notes TEXT,
        PRIMARY KEY (kind, extension_id, key)
    );
    -- newest-first listings of one kind and extension walk this index (rowid order)
    CREATE INDEX records_kind_extension ON records(kind, extension_id);
    """,
    # Retention (issue 20): pruning finds a run's rows and the oldest runs by index.
    """
    CREATE INDEX records_run ON records(run_id);
    CREATE INDEX runs_started ON runs(started_at);
    """,
    # One table of resolutions (issue 22): error groups' states move into `resolutions`,
    # which gains a state (resolved, regressed, open) and the regression history. Where
    # `error_groups` kept a state of its own, it wins: it is what every surface showed.
    """
    CREATE TABLE resolutions_v2 (
        kind TEXT NOT NULL,
        extension_id TEXT NOT NULL,
        key TEXT NOT NULL,
        state TEXT NOT NULL,
        resolved_at REAL,
        resolved_run INTEGER,
        notes TEXT,
        regressed_at REAL,
        regressed_run INTEGER,
        regressions INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (kind, extension_id, key)
    );
    INSERT INTO resolutions_v2(kind, extension_id, key, state, resolved_at, notes)
        SELECT kind, extension_id, key, 'resolved', resolved_at, notes FROM resolutions;
    INSERT INTO resolutions_v2(kind, extension_id, key, state, resolved_at, resolved_run, notes,
            regressed_at, regressed_run, regressions)
        SELECT 'error_group', extension_id, fingerprint,
            CASE WHEN regressed <> 0 THEN 'regressed'
                 WHEN status = 'resolved' THEN 'resolved' ELSE 'open' END,
            resolved_at, resolved_run, notes, regressed_at, regressed_run, regressions
        FROM error_groups
        WHERE status = 'resolved' OR regressed <> 0 OR regressions > 0
            OR resolved_at IS NOT NULL OR notes IS NOT NULL
        ON CONFLICT (kind, extension_id, key) DO UPDATE SET state = excluded.state,
            resolved_at = excluded.resolved_at, resolved_run = excluded.resolved_run,
            notes = COALESCE(excluded.notes, resolutions_v2.notes),
            regressed_at = excluded.regressed_at, regressed_run = excluded.regressed_run,
            regressions = excluded.regressions;
    DROP TABLE resolutions;
    ALTER TABLE resolutions_v2 RENAME TO resolutions;
    DROP INDEX error_groups_status;
    ALTER TABLE error_groups DROP COLUMN status;
    ALTER TABLE error_groups DROP COLUMN resolved_at;
    ALTER TABLE error_groups DROP COLUMN resolved_run;
    ALTER TABLE error_groups DROP COLUMN notes;
    ALTER TABLE error_groups DROP COLUMN regressed;
    ALTER TABLE error_groups DROP COLUMN regressed_at;
    ALTER TABLE error_groups DROP COLUMN regressed_run;
    ALTER TABLE error_groups DROP COLUMN regressions;
    """,
    # A test's commit leaves sqlite_sequence alone (issue 17): SQLite's `tests` is rebuilt
    # without AUTOINCREMENT (every id kept; a new test's id is the largest plus one), one page
    # fewer written per commit. PostgreSQL's identity column has no such cost: these
    # statements are SQLite's only.
    """
    /* sqlite only */ CREATE TABLE tests_v7 (
        id INTEGER PRIMARY KEY,
        run_id INTEGER NOT NULL REFERENCES runs(id),
        nodeid TEXT NOT NULL,
        extension_id TEXT NOT NULL,
        outcome TEXT NOT NULL,
        started_at REAL,
        finished_at REAL,
        duration_ms REAL,
        setup_ms REAL,
        call_ms REAL,
        teardown_ms REAL,
        session_id TEXT,
        data TEXT NOT NULL DEFAULT '{}'
    );
    /* sqlite only */ INSERT INTO tests_v7(id, run_id, nodeid, extension_id, outcome, started_at,
            finished_at, duration_ms, setup_ms, call_ms, teardown_ms, session_id, data)
        SELECT id, run_id, nodeid, extension_id, outcome, started_at, finished_at, duration_ms,
            setup_ms, call_ms, teardown_ms, session_id, data FROM tests ORDER BY id;
    /* sqlite only */ DROP TABLE tests;
    /* sqlite only */ ALTER TABLE tests_v7 RENAME TO tests;
    /* sqlite only */ CREATE INDEX tests_run ON tests(run_id);
    /* sqlite only */ CREATE INDEX tests_nodeid ON tests(nodeid);
    /* sqlite only */ DELETE FROM sqlite_sequence WHERE name = 'tests';
    """,
    # A test's commit writes one index page fewer (issue 17): one index on (run_id, nodeid)
    # finds a run's tests and a test in a run, as `tests_run` and `tests_nodeid` did; the
    # runs a test ran in are found run by run (`StoreReading.test_outcomes`).
    """
    CREATE INDEX tests_run_nodeid ON tests(run_id, nodeid);
    DROP INDEX tests_run;
    DROP INDEX tests_nodeid;
    """,
    # Readers bring a live run's journal into a SQLite store (issue 17): a test of a run is
    # one row whoever inserts it first, its writer or a reader (`INSERT ... ON CONFLICT DO
    # NOTHING` on the unique key (run, node id, end), which also finds a run's tests and a
    # test in a run, as `tests_run_nodeid` did); `journal_marks` keeps how far each journal
    # is in the store, so that a reader decodes only the lines past it. An exact copy of a
    # test (same run, node id, end and data) an older store holds goes, with its records;
    # distinct tests under one key stay (migration 10 tells them apart). PostgreSQL's
    # writer commits each test itself (its journals are local to its machine): these
    # statements are SQLite's only.
    """
    /* sqlite only */ DELETE FROM records WHERE test_id IN (SELECT t.id FROM tests t
        WHERE EXISTS (SELECT 1 FROM tests u WHERE u.run_id = t.run_id AND u.nodeid = t.nodeid
            AND u.finished_at = t.finished_at AND u.data = t.data AND u.id < t.id));
    /* sqlite only */ DELETE FROM tests WHERE id IN (SELECT t.id FROM tests t
        WHERE EXISTS (SELECT 1 FROM tests u WHERE u.run_id = t.run_id AND u.nodeid = t.nodeid
            AND u.finished_at = t.finished_at AND u.data = t.data AND u.id < t.id));
    /* sqlite only */ CREATE INDEX tests_key ON tests(run_id, nodeid, finished_at);
    /* sqlite only */ DROP INDEX tests_run_nodeid;
    /* sqlite only */ CREATE TABLE journal_marks (
        name TEXT PRIMARY KEY,
        run_id INTEGER NOT NULL,
        position INTEGER NOT NULL
    );
    """,
    # Review finding (issue 17): a test without an end (NULL: a hook's None, a NaN) escaped
    # the unique key, and every reader's import stored it again; distinct tests of one run
    # sharing node id and end (an imported document, a store older than 9) could not be
    # stored at all. The key is now (run, node id, end with NULL as the text 'none', twin):
    # `twin` numbers the distinct tests under one key (0: the first, what runs write). The
    # exact copies the old key let through go, with their records (SQLite only, as 9).
    """
    /* sqlite only */ ALTER TABLE tests ADD COLUMN twin INTEGER NOT NULL DEFAULT 0;
    /* sqlite only */ DELETE FROM records WHERE test_id IN (SELECT t.id FROM tests t
        WHERE EXISTS (SELECT 1 FROM tests u WHERE u.run_id = t.run_id AND u.nodeid = t.nodeid
            AND u.finished_at IS t.finished_at AND u.data = t.data AND u.id < t.id));
    /* sqlite only */ DELETE FROM tests WHERE id IN (SELECT t.id FROM tests t
        WHERE EXISTS (SELECT 1 FROM tests u WHERE u.run_id = t.run_id AND u.nodeid = t.nodeid
            AND u.finished_at IS t.finished_at AND u.data = t.data AND u.id < t.id));
    /* sqlite only */ UPDATE tests SET twin = (SELECT count(*) FROM tests u
        WHERE u.run_id = tests.run_id AND u.nodeid = tests.nodeid
            AND u.finished_at IS tests.finished_at AND u.id < tests.id)
        WHERE EXISTS (SELECT 1 FROM tests u WHERE u.run_id = tests.run_id
            AND u.nodeid = tests.nodeid AND u.finished_at IS tests.finished_at
            AND u.id < tests.id);
    /* sqlite only */ DROP INDEX tests_key;
    /* sqlite only */ CREATE UNIQUE INDEX tests_key
        ON tests(run_id, nodeid, ifnull(finished_at, 'none'), twin);
    """,
]
SCHEMA_VERSION = len(MIGRATIONS)
