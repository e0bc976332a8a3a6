-- Indexes for the dial selection and the lead import, after measuring them at 1M leads.

-- leads(number) served the DNC probe of every ready lead. DNC numbers are never 'ready'
-- (add_dnc moves their leads to 'dnc' and keeps them there; imports screen against the
-- list), and add_dnc reaches leads through UNIQUE(campaign_id, number), so the index only
-- cost every import a second random-order B-tree.
DROP INDEX IF EXISTS leads_number;

-- Due callbacks in (due_at, lead_id) order straight from the index, without a sort.
DROP INDEX IF EXISTS callbacks_due;
CREATE INDEX callbacks_due ON callbacks(campaign_id, due_at, lead_id) WHERE status = 'pending';
