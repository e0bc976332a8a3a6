-- Call log details (R-LOG-1/3/4/6) beyond the core call_log/recordings tables of 0001.

-- What the call log shows that 0001 does not keep: the number dialed (inbound), the client
-- type at the time of the call (a client may be re-typed later; the log keeps history),
-- the routing fallback taken, and why a recording is missing (failures are never silent).
ALTER TABLE call_log ADD COLUMN dialed TEXT;
ALTER TABLE call_log ADD COLUMN client_type TEXT
    CHECK (client_type IS NULL OR client_type IN ('prospect', 'customer', 'problem', 'vip'));
ALTER TABLE call_log ADD COLUMN fallback TEXT;
ALTER TABLE call_log ADD COLUMN recording_error TEXT;
CREATE INDEX call_log_too_long ON call_log(started_at) WHERE too_long = 1;

-- R-LOG-6: recording metadata; the file itself stays on disk under the recordings dir.
ALTER TABLE recordings ADD COLUMN agent TEXT;
ALTER TABLE recordings ADD COLUMN size_bytes INTEGER;
ALTER TABLE recordings ADD COLUMN sha256 TEXT;
ALTER TABLE recordings ADD COLUMN downloaded_at REAL;
CREATE INDEX recordings_started ON recordings(started_at);

-- R-LOG-5: a known client may be routed to "their" employee first. An explicit owner
-- here wins over the agent a campaign linked the client's lead to (leads.linked_agent).
CREATE TABLE client_agents (
    contact_id INTEGER PRIMARY KEY REFERENCES contacts(id) ON DELETE CASCADE,
    agent      TEXT NOT NULL REFERENCES agents(user_id) ON DELETE CASCADE ON UPDATE CASCADE
);
-- The linked agent of a client is looked up on every inbound call (caller-ID lookup hot
-- path); without this index that is a scan of every lead.
CREATE INDEX leads_contact ON leads(contact_id, linked_at) WHERE contact_id IS NOT NULL;
