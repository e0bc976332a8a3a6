-- Billing (R-SUB-1..5): accounts with credit, subscriptions, an append-only ledger and a
-- mail outbox. User and account ids are plain TEXT with no foreign key to a users table:
-- that table belongs to another domain, and billing must keep its history even when a
-- user is renamed or removed there. billing_users is billing's own view of a user (type,
-- account, e-mail address for notices).

CREATE TABLE billing_accounts (
    account_id   TEXT PRIMARY KEY,
    kind         TEXT NOT NULL CHECK (kind IN ('call_centre', 'standard')),
    -- Cached balance of the account's general credit; the ledger is the truth and
    -- verify() recomputes it. Kept here so a deduction can be one conditional UPDATE.
    credit_cents INTEGER NOT NULL DEFAULT 0 CHECK (credit_cents >= 0),
    created_at   TEXT NOT NULL
);

CREATE TABLE billing_users (
    user_id    TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES billing_accounts(account_id),
    user_type  TEXT NOT NULL CHECK (user_type IN ('telemarketer', 'outside_sales', 'inside_sales')),
    email      TEXT
);

CREATE TABLE billing_subscriptions (
    id                  INTEGER PRIMARY KEY,
    user_id             TEXT NOT NULL REFERENCES billing_users(user_id),
    account_id          TEXT NOT NULL REFERENCES billing_accounts(account_id),
    plan                TEXT NOT NULL CHECK (plan IN ('attempt', 'month', 'quarter', 'year')),
    user_type           TEXT NOT NULL,
    starts_on           TEXT NOT NULL,
    ends_on             TEXT,                 -- exclusive; NULL for per-attempt
    anchor_day          INTEGER NOT NULL CHECK (anchor_day BETWEEN 1 AND 31),
    attempt_price_cents INTEGER NOT NULL DEFAULT 0 CHECK (attempt_price_cents >= 0),
    allocation_cents    INTEGER NOT NULL DEFAULT 0 CHECK (allocation_cents >= 0),
    term_cents          INTEGER NOT NULL DEFAULT 0 CHECK (term_cents >= 0),
    recording           INTEGER NOT NULL DEFAULT 0 CHECK (recording IN (0, 1)),
    recording_cents     INTEGER NOT NULL DEFAULT 0 CHECK (recording_cents >= 0),
    auto_renew          INTEGER NOT NULL DEFAULT 0 CHECK (auto_renew IN (0, 1)),
    -- Cached balance of the subscription's prepaid pot (see billing_ledger).
    balance_cents       INTEGER NOT NULL DEFAULT 0 CHECK (balance_cents >= 0),
    status              TEXT NOT NULL CHECK (status IN ('active', 'ended', 'removed')),
    renewed_from        INTEGER REFERENCES billing_subscriptions(id),
    notice_sent_on      TEXT,
    created_at          TEXT NOT NULL,
    CHECK ((plan = 'attempt') = (ends_on IS NULL)),
    CHECK (plan <> 'attempt' OR recording = 0)
);
CREATE INDEX billing_subscriptions_user ON billing_subscriptions(user_id, status);
CREATE INDEX billing_subscriptions_account ON billing_subscriptions(account_id, status);

-- Double entry: every row moves amount_cents from one pot to another, so the pots always
-- sum to zero. Pots: 'external' (money from outside), 'credit' (the account's general
-- credit), 'sub' (the prepaid pot of subscription_id), 'earned' (consumed service).
CREATE TABLE billing_ledger (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    at              TEXT NOT NULL,
    account_id      TEXT NOT NULL REFERENCES billing_accounts(account_id),
    user_id         TEXT,
    subscription_id INTEGER REFERENCES billing_subscriptions(id),
    kind            TEXT NOT NULL,
    from_pot        TEXT NOT NULL CHECK (from_pot IN ('external', 'credit', 'sub', 'earned')),
    to_pot          TEXT NOT NULL CHECK (to_pot IN ('external', 'credit', 'sub', 'earned')),
    amount_cents    INTEGER NOT NULL CHECK (amount_cents > 0),
    reason          TEXT NOT NULL CHECK (length(reason) > 0),
    CHECK (from_pot <> to_pot),
    CHECK ((from_pot = 'sub' OR to_pot = 'sub') = (subscription_id IS NOT NULL))
);
CREATE INDEX billing_ledger_account ON billing_ledger(account_id, id);
CREATE INDEX billing_ledger_user ON billing_ledger(user_id, at);
CREATE INDEX billing_ledger_subscription ON billing_ledger(subscription_id);

CREATE TRIGGER billing_ledger_no_update BEFORE UPDATE ON billing_ledger
BEGIN
    SELECT RAISE(ABORT, 'billing_ledger is append-only');
END;

CREATE TRIGGER billing_ledger_no_delete BEFORE DELETE ON billing_ledger
BEGIN
    SELECT RAISE(ABORT, 'billing_ledger is append-only');
END;

-- Outbox: a notice is written in the same transaction as the event that causes it and
-- sent afterwards, so a mail server that is down delays a notice but never loses it.
CREATE TABLE billing_notices (
    id         INTEGER PRIMARY KEY,
    created_at TEXT NOT NULL,
    user_id    TEXT NOT NULL,
    email      TEXT,
    subject    TEXT NOT NULL,
    body       TEXT NOT NULL,
    sent_at    TEXT,
    attempts   INTEGER NOT NULL DEFAULT 0,
    last_error TEXT
);
CREATE INDEX billing_notices_pending ON billing_notices(sent_at, id);
