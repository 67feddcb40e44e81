-- L04: record one metered model call and its ModelUsageRecorded outbox entry in a single statement (one round
-- trip on the hottest path of the platform), still as the tenant: the function switches to strata_app and the
-- tenant's scope for the rest of its (implicit) transaction, so row-level security checks both inserts.
CREATE FUNCTION strata_record_model_usage(p_tenant uuid, p_usage jsonb, p_event jsonb) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM set_config('app.tenant_id', p_tenant::text, true);
    PERFORM set_config('role', 'strata_app', true);
    INSERT INTO model_usage (usage_id, tenant_id, model_name, provider, provider_model, purpose, run_id, task_id,
                             input_tokens, output_tokens, cached_tokens, cost_micro_usd, latency_ms, cache_hit, at)
    SELECT r.usage_id, p_tenant, r.model_name, r.provider, r.provider_model, coalesce(r.purpose, ''), r.run_id,
           r.task_id, r.input_tokens, r.output_tokens, coalesce(r.cached_tokens, 0), r.cost_micro_usd, r.latency_ms,
           coalesce(r.cache_hit, false), coalesce(r.at, now())
    FROM jsonb_populate_record(NULL::model_usage, p_usage) AS r;
    INSERT INTO outbox (event_id, tenant_id, source, detail_type, detail)
    VALUES ((p_event ->> 'event_id')::uuid, p_tenant, p_event ->> 'source', p_event ->> 'detail_type', p_event -> 'detail');
END
$$;
