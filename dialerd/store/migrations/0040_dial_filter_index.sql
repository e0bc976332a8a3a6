-- The dial selection's filter columns in its index, after measuring at 1M leads.
--
-- The pool selection leaves out leads inside the 72 h abandon / 24 h machine redial guards
-- (and leads linked to another agent, and those out of attempts) in SQL. Those leads sit
-- at the head of a busy campaign's queue (one no-contact attempt scores 3.0, a fresh lead
-- 2.0), so the selection skips thousands of them. With the filter columns in the index it
-- skips index entries; without, it fetched each table row first: 13,000 guarded leads
-- ahead cost 12.6 ms that way against 3.4 ms now (500 leads, 1M, best of 15).
-- `id` is spelled out so the index order is the full queue order (rank ties, then id)
-- before the filter columns.
DROP INDEX IF EXISTS leads_ready;
CREATE INDEX leads_ready ON leads(campaign_id, tz, call_score DESC, last_attempt_at, rank, id,
                                  attempts, last_abandoned_at, last_machine_at, linked_agent,
                                  linked_at)
    WHERE status = 'ready';
