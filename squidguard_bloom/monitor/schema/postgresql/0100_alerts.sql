-- squidguard-bloom monitor: alerts (PostgreSQL). See docs/alerts.md.
-- Numbered 0100 so that the monitor's and the dashboard's own migrations (0002...)
-- never collide with it; migrate.py applies gaps in order.

-- One row per (rule, proxy) whose condition holds now, or held until lately.
CREATE TABLE alert_state (
    rule         TEXT NOT NULL,
    proxy        TEXT NOT NULL,
    state        TEXT NOT NULL,   -- pending | firing
    active_since DOUBLE PRECISION NOT NULL,   -- monitor clock: first evaluation that found the condition
    since        DOUBLE PRECISION NOT NULL,   -- when the fault began, as far as the rule knows (messages)
    firing_since DOUBLE PRECISION,            -- when it went from pending to firing
    last_true    DOUBLE PRECISION NOT NULL,   -- last evaluation that found the condition (keep_firing_for)
    summary      TEXT NOT NULL,   -- what the rule found, one line
    PRIMARY KEY (rule, proxy)
);

-- Notification groups (Alertmanager's aggregation groups).
CREATE TABLE alert_groups (
    group_key   TEXT PRIMARY KEY,  -- e.g. rule=unreachable
    first_seen  DOUBLE PRECISION NOT NULL,     -- first alert of the group seen (pending or firing)
    last_sent   DOUBLE PRECISION,              -- last notification (NULL: none yet)
    notified    TEXT NOT NULL      -- JSON {"notified": ["rule/proxy" keys firing at the last
                                   -- message], "resolved": [those resolved since]}
);

-- Every state change of every alert: the history the dashboard and the CLI show.
CREATE TABLE alert_history (
    id        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    ts        DOUBLE PRECISION NOT NULL,
    rule      TEXT NOT NULL,
    proxy     TEXT NOT NULL,
    from_state TEXT NOT NULL,     -- none | pending | firing
    to_state  TEXT NOT NULL,      -- pending | firing | resolved | dropped
    summary   TEXT NOT NULL
);
CREATE INDEX alert_history_ts ON alert_history (ts);

-- Messages decided, one row per channel; the outbox survives a restart.
CREATE TABLE alert_notifications (
    id        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    created   DOUBLE PRECISION NOT NULL,      -- monitor clock when the engine decided to send it
    group_key TEXT NOT NULL,
    kind      TEXT NOT NULL,      -- firing | update | resolved | repeat | test
    channel   TEXT NOT NULL,
    title     TEXT NOT NULL,
    body      TEXT NOT NULL,
    payload   TEXT NOT NULL,      -- JSON (the webhook's body)
    status    TEXT NOT NULL,      -- queued | sent | failed | dropped
    attempts  BIGINT NOT NULL DEFAULT 0,
    delivered DOUBLE PRECISION,               -- wall clock when the channel accepted it
    error     TEXT
);
CREATE INDEX alert_notifications_created ON alert_notifications (created);

-- Silences: alerts matching (rule, proxy glob) between starts and ends notify nobody.
CREATE TABLE alert_silences (
    id       BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    rule     TEXT NOT NULL,       -- a rule name or *
    proxy    TEXT NOT NULL,       -- a proxy name or glob (fnmatch)
    starts   DOUBLE PRECISION NOT NULL,
    ends     DOUBLE PRECISION NOT NULL,
    created  DOUBLE PRECISION NOT NULL,
    author   TEXT NOT NULL,
    comment  TEXT NOT NULL
);
