-- L04: metered usage now reaches model_usage through a Redis stream (strata.spool) and is written in batches by
-- the model gateway's flush, which inserts rows and their outbox entries itself; the per-call function is unused.
DROP FUNCTION strata_record_model_usage(uuid, jsonb, jsonb);
