-- Webhooks (docs/alerts.md): endpoints, the events made, and one delivery per (endpoint, event), queued
-- here so that a restart loses none; alert states make each crossing an event once, across servers.
CREATE TABLE webhooks (
    id INTEGER PRIMARY KEY,
    url TEXT NOT NULL UNIQUE,
    -- The signing key (whsec_...): needed in clear to sign, so kept like a private key, never logged.
    secret TEXT NOT NULL,
    -- Comma-separated event types.
    events TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE TABLE webhook_events (
    id INTEGER PRIMARY KEY,
    -- What makes the event unique (e.g. device.silent:cnt-1:<minute>): made twice, queued once.
    event_key TEXT NOT NULL UNIQUE,
    event_type TEXT NOT NULL,
    body TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE TABLE webhook_deliveries (
    id INTEGER PRIMARY KEY,
    webhook_id INTEGER NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    event_id INTEGER NOT NULL REFERENCES webhook_events (id),
    message_id TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    -- Unix ms; a claimed delivery is pushed a lease ahead, so no other server takes it meanwhile.
    next_attempt_at INTEGER,
    delivered_at INTEGER,
    last_status INTEGER,
    last_error TEXT,
    UNIQUE (webhook_id, event_id)
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE delivered_at IS NULL;
CREATE TABLE alert_states (
    subject TEXT PRIMARY KEY,
    state TEXT NOT NULL
);
