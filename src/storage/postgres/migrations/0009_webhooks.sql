-- Webhooks (docs/alerts.md): endpoints, the events made, and one delivery per (endpoint, event), queued
-- here so that a restart loses none; alert states make each crossing an event once, across servers.
CREATE TABLE webhooks (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    url text NOT NULL UNIQUE,
    -- The signing key (whsec_...): needed in clear to sign, so kept like a private key, never logged.
    secret text NOT NULL,
    -- Comma-separated event types.
    events text NOT NULL,
    created_at bigint NOT NULL
);
CREATE TABLE webhook_events (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- What makes the event unique (e.g. device.silent:cnt-1:<minute>): made twice, queued once.
    event_key text NOT NULL UNIQUE,
    event_type text NOT NULL,
    body text NOT NULL,
    created_at bigint NOT NULL
);
CREATE TABLE webhook_deliveries (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    webhook_id bigint NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    event_id bigint NOT NULL REFERENCES webhook_events (id),
    message_id text NOT NULL,
    attempts bigint NOT NULL DEFAULT 0,
    -- Unix ms; a claimed delivery is pushed a lease ahead, so no other server takes it meanwhile.
    next_attempt_at bigint,
    delivered_at bigint,
    last_status bigint,
    last_error text,
    UNIQUE (webhook_id, event_id)
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE delivered_at IS NULL;
CREATE TABLE alert_states (
    subject text PRIMARY KEY,
    state text NOT NULL
);
