-- 011: budget alert delivery per channel: one pause every instance honours, the recorded order,
-- and messages that carry several thresholds.
--
-- A 429 (or a 503 with Retry-After) means "no new request to this endpoint before then", not
-- "retry this one message later": the pause belongs to the channel, and it is a row, so a
-- restarted daemon or the other instance that takes over delivery honours it too. Retryable
-- failures (5xx, timeouts) pause the channel as well, with backoff: its alerts wait behind the
-- oldest one instead of overtaking it, so a channel receives them in the order they were recorded.
CREATE TABLE rollupd.alert_channels (
    channel      text PRIMARY KEY,
    paused_until timestamptz NOT NULL,
    pause_reason text,
    updated_at   timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE rollupd.alert_channels IS 'webhook channels that asked (429/503 Retry-After) or failed: no request before paused_until';

-- The alerts of one budget and period that are due together go out as one message; message_id
-- (its webhook-id) is written before the first attempt, so every retry sends the same rows under
-- the same id, and a threshold recorded meanwhile gets a message of its own.
ALTER TABLE rollupd.budget_alerts ADD COLUMN message_id text;
COMMENT ON COLUMN rollupd.budget_alerts.message_id IS 'the webhook-id of the message that carries this alert (set at its first attempt)';

-- Delivery reads a channel's pending alerts in the order they were recorded.
CREATE INDEX idx_budget_alerts_pending_order ON rollupd.budget_alerts (channel, id) WHERE status = 'pending';
