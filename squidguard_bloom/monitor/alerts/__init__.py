"""Alerts: rules over the monitor's database, a state machine with grouping, inhibition,
silences and repeat intervals, and paced channels (Telegram, webhook, e-mail).

See docs/alerts.md. Modules: settings (the [alerts] TOML table), rules, probes, engine
(the state machine), messages (what a message says), store (its tables), channels
(delivery), service (ties them together), cli (the alerts and silence commands).
"""
