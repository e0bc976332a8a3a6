-- dialerd core schema: campaigns, leads (addresses), contacts (clients), agents and their
-- extensions, result codes, attempts, callbacks, call log, recordings, DNC, registration.
-- Times are UTC seconds since the epoch (REAL). Phone numbers are E.164 ('+31201234567').
-- Campaign *rules* live in YAML (dialerd.config); the rows here are what those rules act on,
-- plus a copy of result codes and registration topics so history outlives a YAML edit.

CREATE TABLE campaigns (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    config_json TEXT NOT NULL DEFAULT '{}',  -- the validated CampaignConfig last synced
    created_at  REAL NOT NULL,
    updated_at  REAL NOT NULL
);

-- Agents are keyed by their text user id everywhere (queue rules, billing, MQTT topics).
CREATE TABLE agents (
    user_id    TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    email      TEXT,
    role       TEXT NOT NULL DEFAULT 'agent' CHECK (role IN ('agent', 'supervisor', 'admin')),
    active     INTEGER NOT NULL DEFAULT 1 CHECK (active IN (0, 1)),
    created_at REAL NOT NULL
);

-- R-LOG-5: each employee has an extension; the endpoint is how Asterisk reaches it.
CREATE TABLE extensions (
    extension TEXT PRIMARY KEY,
    agent     TEXT REFERENCES agents(user_id) ON DELETE SET NULL ON UPDATE CASCADE,
    endpoint  TEXT NOT NULL  -- e.g. 'PJSIP/1001'
);
CREATE INDEX extensions_agent ON extensions(agent);

-- R-LOG-1/4: clients, for caller-ID lookup and the call log's name and client type.
CREATE TABLE contacts (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL DEFAULT '',
    client_type TEXT NOT NULL DEFAULT 'prospect'
                CHECK (client_type IN ('prospect', 'customer', 'problem', 'vip')),
    note        TEXT NOT NULL DEFAULT '',
    created_at  REAL NOT NULL
);
CREATE TABLE contact_numbers (
    number     TEXT PRIMARY KEY,
    contact_id INTEGER NOT NULL REFERENCES contacts(id) ON DELETE CASCADE
) WITHOUT ROWID;
CREATE INDEX contact_numbers_contact ON contact_numbers(contact_id);

CREATE TABLE import_batches (
    id          INTEGER PRIMARY KEY,
    campaign_id INTEGER NOT NULL REFERENCES campaigns(id) ON DELETE CASCADE,
    source      TEXT NOT NULL,  -- file name as given
    rows_in     INTEGER NOT NULL,
    imported    INTEGER NOT NULL,
    rejected    INTEGER NOT NULL,
    imported_at REAL NOT NULL,
    CHECK (rows_in = imported + rejected)
);

-- The address (lead). status, next_dial_at and call_score are precomputed when an attempt
-- is recorded, so "what to dial next" is an ordered index range scan per time zone (see
-- leads_ready and dialerd/store/leads.py):
--   waiting    not before next_dial_at (retry delay); woken to 'ready' when due
--   ready      dialable as far as time goes; calling hours are checked per time zone
--   dialing    handed to the dialer, outcome not recorded yet
--   callback   a pending row in callbacks owns the next attempt
--   done       finished by a result code (positive, negative, discarded)
--   exhausted  max attempts used up
--   dnc        on the do-not-call list
CREATE TABLE leads (
    id              INTEGER PRIMARY KEY,
    campaign_id     INTEGER NOT NULL REFERENCES campaigns(id) ON DELETE CASCADE,
    number          TEXT NOT NULL,
    tz              TEXT NOT NULL,  -- IANA zone; several joined by ',' if the number is ambiguous
    fields          TEXT NOT NULL DEFAULT '{}',  -- custom columns, JSON object
    contact_id      INTEGER REFERENCES contacts(id) ON DELETE SET NULL,
    status          TEXT NOT NULL DEFAULT 'ready'
                    CHECK (status IN ('waiting', 'ready', 'dialing', 'callback', 'done',
                                      'exhausted', 'dnc')),
    phase           TEXT NOT NULL DEFAULT 'suspect'
                    CHECK (phase IN ('suspect', 'prospect', 'qualified_prospect', 'lead',
                                     'qualified_lead', 'quote', 'order', 'discarded',
                                     'negative', 'lost')),
    rank            INTEGER NOT NULL DEFAULT 0,  -- import order (tie-break 'import-order')
    attempts        INTEGER NOT NULL DEFAULT 0,
    -- R-RC-3: 2 (the implicit "Open" every address starts with) + the attempt scores;
    -- call_score = score_total / max(attempts, 1), kept here so the index can order by it.
    score_total     INTEGER NOT NULL DEFAULT 2,
    call_score      REAL NOT NULL DEFAULT 2.0,
    next_dial_at    REAL NOT NULL DEFAULT 0,
    linked_agent    TEXT REFERENCES agents(user_id) ON DELETE SET NULL ON UPDATE CASCADE,
    linked_at       REAL,  -- R-RC-6: linked to the agent who first reached the CP
    last_result     TEXT,
    last_outcome    TEXT,
    last_attempt_at REAL,
    last_abandoned_at REAL,  -- redial guards (72 h after an abandon, 24 h after a machine)
    last_machine_at REAL,
    import_batch_id INTEGER REFERENCES import_batches(id) ON DELETE SET NULL,
    source_line     INTEGER,  -- line in the imported file, for the admin's cross-reference
    created_at      REAL NOT NULL,
    UNIQUE (campaign_id, number)
);
-- Queue order within a zone: call score high first, never-dialled (NULL) then least recent,
-- import rank, id. One range per allowed zone; no sort for a single zone.
CREATE INDEX leads_ready ON leads(campaign_id, tz, call_score DESC, last_attempt_at, rank)
    WHERE status = 'ready';
CREATE INDEX leads_waiting ON leads(next_dial_at) WHERE status = 'waiting';
CREATE INDEX leads_number ON leads(number);

-- The distinct time zones of a campaign's leads: calling hours are evaluated once per zone,
-- not once per lead, and each allowed zone is a range of leads_dialable.
CREATE TABLE campaign_timezones (
    campaign_id INTEGER NOT NULL REFERENCES campaigns(id) ON DELETE CASCADE,
    tz          TEXT NOT NULL,
    PRIMARY KEY (campaign_id, tz)
) WITHOUT ROWID;

-- A copy of each campaign's result codes (R-RC-1/2/4/5): attempts reference them, and a
-- code removed from YAML is deactivated, never deleted, so history keeps its meaning.
CREATE TABLE result_codes (
    campaign_id      INTEGER NOT NULL REFERENCES campaigns(id) ON DELETE CASCADE,
    code             TEXT NOT NULL,
    label            TEXT NOT NULL,
    category         TEXT NOT NULL
                     CHECK (category IN ('no-contact', 'callback', 'positive', 'negative',
                                         'discarded')),
    contact_priority TEXT NOT NULL
                     CHECK (contact_priority IN ('very_low', 'open', 'medium', 'high',
                                                 'very_high')),
    score            INTEGER NOT NULL CHECK (score IN (1, 2, 3, 4, 6)),
    callback_minutes INTEGER,
    funnel_phase     TEXT,
    flags            TEXT NOT NULL DEFAULT '{}',  -- JSON: detail_screen, allow_reassign, ...
    active           INTEGER NOT NULL DEFAULT 1 CHECK (active IN (0, 1)),
    PRIMARY KEY (campaign_id, code)
) WITHOUT ROWID;

-- R-LOG-1: every inbound and outbound call. status 'unknown' when the PBX did not say.
CREATE TABLE call_log (
    id               INTEGER PRIMARY KEY,
    uniqueid         TEXT UNIQUE,  -- Asterisk's linkedid
    direction        TEXT NOT NULL CHECK (direction IN ('in', 'out')),
    status           TEXT NOT NULL DEFAULT 'unknown'
                     CHECK (status IN ('answered', 'missed', 'unknown')),
    number           TEXT NOT NULL,  -- the customer's number (caller in, called out)
    caller_id        TEXT,
    extension        TEXT,           -- the employee's extension at the time (no FK: history)
    agent            TEXT REFERENCES agents(user_id) ON DELETE SET NULL ON UPDATE CASCADE,
    contact_id       INTEGER REFERENCES contacts(id) ON DELETE SET NULL,
    campaign_id      INTEGER REFERENCES campaigns(id) ON DELETE SET NULL,
    lead_id          INTEGER REFERENCES leads(id) ON DELETE SET NULL,
    started_at       REAL NOT NULL,
    answered_at      REAL,
    ended_at         REAL,
    duration_seconds REAL,
    too_long         INTEGER NOT NULL DEFAULT 0 CHECK (too_long IN (0, 1))  -- R-LOG-3
);
CREATE INDEX call_log_started ON call_log(started_at);
CREATE INDEX call_log_extension ON call_log(extension, started_at);
CREATE INDEX call_log_contact ON call_log(contact_id, started_at);
CREATE INDEX call_log_number ON call_log(number, started_at);

-- R-AD-4 contact history: one row per attempt on an address.
CREATE TABLE attempts (
    id           INTEGER PRIMARY KEY,
    lead_id      INTEGER NOT NULL REFERENCES leads(id) ON DELETE CASCADE,
    campaign_id  INTEGER NOT NULL REFERENCES campaigns(id) ON DELETE CASCADE,
    call_id      INTEGER REFERENCES call_log(id) ON DELETE SET NULL,
    agent        TEXT REFERENCES agents(user_id) ON DELETE SET NULL ON UPDATE CASCADE,
    started_at   REAL NOT NULL,
    ended_at     REAL,
    outcome      TEXT CHECK (outcome IN ('human', 'busy', 'no_answer', 'machine', 'abandoned',
                                         'failed')),
    result_code  TEXT NOT NULL,
    score        INTEGER NOT NULL CHECK (score IN (1, 2, 3, 4, 6)),
    note         TEXT NOT NULL DEFAULT '',
    email_to     TEXT,
    email_status TEXT CHECK (email_status IN ('processed', 'deferred', 'bounced', 'delivered',
                                              'opened', 'clicked')),
    FOREIGN KEY (campaign_id, result_code) REFERENCES result_codes(campaign_id, code)
);
CREATE INDEX attempts_lead ON attempts(lead_id, started_at);
CREATE INDEX attempts_call ON attempts(call_id);

-- R-CB: scheduled callbacks. owner_agent NULL = any agent (R-CB-8). reserved_until ends
-- the owner's reservation window (R-CB-2/5).
CREATE TABLE callbacks (
    id             INTEGER PRIMARY KEY,
    lead_id        INTEGER NOT NULL REFERENCES leads(id) ON DELETE CASCADE,
    campaign_id    INTEGER NOT NULL REFERENCES campaigns(id) ON DELETE CASCADE,
    owner_agent    TEXT REFERENCES agents(user_id) ON DELETE SET NULL ON UPDATE CASCADE,
    due_at         REAL NOT NULL,
    reserved_until REAL,
    comment        TEXT NOT NULL DEFAULT '',  -- shown to whoever gets the callback (R-CB-7)
    status         TEXT NOT NULL DEFAULT 'pending'
                   CHECK (status IN ('pending', 'offered', 'done', 'cancelled')),
    created_by     TEXT REFERENCES agents(user_id) ON DELETE SET NULL ON UPDATE CASCADE,
    created_at     REAL NOT NULL
);
CREATE INDEX callbacks_due ON callbacks(campaign_id, due_at) WHERE status = 'pending';
CREATE INDEX callbacks_owner ON callbacks(owner_agent, due_at) WHERE status = 'pending';
CREATE INDEX callbacks_lead ON callbacks(lead_id);

-- R-LOG-6
CREATE TABLE recordings (
    id               INTEGER PRIMARY KEY,
    call_id          INTEGER NOT NULL REFERENCES call_log(id) ON DELETE CASCADE,
    path             TEXT NOT NULL UNIQUE,
    started_at       REAL NOT NULL,
    duration_seconds REAL,
    downloaded       INTEGER NOT NULL DEFAULT 0 CHECK (downloaded IN (0, 1))
);
CREATE INDEX recordings_call ON recordings(call_id);

-- R-DL-4: the do-not-call list, global across campaigns.
CREATE TABLE dnc (
    number   TEXT PRIMARY KEY,
    reason   TEXT NOT NULL DEFAULT '',
    source   TEXT NOT NULL DEFAULT '',
    added_at REAL NOT NULL
) WITHOUT ROWID;

-- R-REG-1..3: registration categories/topics (campaign_id NULL: inbound / all campaigns).
CREATE TABLE registration_categories (
    id          INTEGER PRIMARY KEY,
    campaign_id INTEGER REFERENCES campaigns(id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    choice      TEXT NOT NULL CHECK (choice IN ('single', 'multi')),
    active      INTEGER NOT NULL DEFAULT 1 CHECK (active IN (0, 1)),
    UNIQUE (campaign_id, name)
);
CREATE TABLE registration_topics (
    id          INTEGER PRIMARY KEY,
    category_id INTEGER NOT NULL REFERENCES registration_categories(id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    active      INTEGER NOT NULL DEFAULT 1 CHECK (active IN (0, 1)),
    UNIQUE (category_id, name)
);
CREATE TABLE registrations (
    id            INTEGER PRIMARY KEY,
    topic_id      INTEGER NOT NULL REFERENCES registration_topics(id),
    call_id       INTEGER REFERENCES call_log(id) ON DELETE SET NULL,
    attempt_id    INTEGER REFERENCES attempts(id) ON DELETE SET NULL,
    agent         TEXT REFERENCES agents(user_id) ON DELETE SET NULL ON UPDATE CASCADE,
    registered_at REAL NOT NULL
);
CREATE INDEX registrations_topic ON registrations(topic_id, registered_at);
CREATE INDEX registrations_call ON registrations(call_id);
