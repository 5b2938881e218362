-- squidguard-bloom monitor: alerts (SQLite). See docs/alerts.md.
-- Numbered 0100 so that the monitor's and the dashboard's own migrations (0002...)
-- never collide with it; migrate.py applies gaps in order.

-- One row per (rule, proxy) whose condition holds now, or held until lately.
CREATE TABLE alert_state (
    rule         TEXT NOT NULL,
    proxy        TEXT NOT NULL,
    state        TEXT NOT NULL,   -- pending | firing
    active_since REAL NOT NULL,   -- monitor clock: first evaluation that found the condition
    since        REAL NOT NULL,   -- when the fault began, as far as the rule knows (messages)
    firing_since REAL,            -- when it went from pending to firing
    last_true    REAL NOT NULL,   -- last evaluation that found the condition (keep_firing_for)
    summary      TEXT NOT NULL,   -- what the rule found, one line
    PRIMARY KEY (rule, proxy)
);

-- Notification groups (Alertmanager's aggregation groups).
CREATE TABLE alert_groups (
    group_key   TEXT PRIMARY KEY,  -- e.g. rule=unreachable
    first_seen  REAL NOT NULL,     -- first alert of the group seen (pending or firing)
    last_sent   REAL,              -- last notification (NULL: none yet)
    notified    TEXT NOT NULL      -- JSON {"notified": ["rule/proxy" keys firing at the last
                                   -- message], "resolved": [those resolved since]}
);

-- Every state change of every alert: the history the dashboard and the CLI show.
CREATE TABLE alert_history (
    id        INTEGER PRIMARY KEY,
    ts        REAL NOT NULL,
    rule      TEXT NOT NULL,
    proxy     TEXT NOT NULL,
    from_state TEXT NOT NULL,     -- none | pending | firing
    to_state  TEXT NOT NULL,      -- pending | firing | resolved | dropped
    summary   TEXT NOT NULL
);
CREATE INDEX alert_history_ts ON alert_history (ts);

-- Messages decided, one row per channel; the outbox survives a restart.
CREATE TABLE alert_notifications (
    id        INTEGER PRIMARY KEY,
    created   REAL NOT NULL,      -- monitor clock when the engine decided to send it
    group_key TEXT NOT NULL,
    kind      TEXT NOT NULL,      -- firing | update | resolved | repeat | test
    channel   TEXT NOT NULL,
    title     TEXT NOT NULL,
    body      TEXT NOT NULL,
    payload   TEXT NOT NULL,      -- JSON (the webhook's body)
    status    TEXT NOT NULL,      -- queued | sent | failed | dropped
    attempts  INTEGER NOT NULL DEFAULT 0,
    delivered REAL,               -- wall clock when the channel accepted it
    error     TEXT
);
CREATE INDEX alert_notifications_created ON alert_notifications (created);

-- Silences: alerts matching (rule, proxy glob) between starts and ends notify nobody.
CREATE TABLE alert_silences (
    id       INTEGER PRIMARY KEY,
    rule     TEXT NOT NULL,       -- a rule name or *
    proxy    TEXT NOT NULL,       -- a proxy name or glob (fnmatch)
    starts   REAL NOT NULL,
    ends     REAL NOT NULL,
    created  REAL NOT NULL,
    author   TEXT NOT NULL,
    comment  TEXT NOT NULL
);
