-- L01 event_log: the aggregate each event is about (queryable), append-only for the application role, and one
-- partition per month (created ahead by strata_ensure_event_log_partitions, run here and by L01's daily job).
ALTER TABLE event_log ADD COLUMN aggregate_type text NOT NULL DEFAULT '';
ALTER TABLE event_log ADD COLUMN aggregate_id text NOT NULL DEFAULT '';
CREATE INDEX event_log_aggregate ON event_log (tenant_id, aggregate_type, aggregate_id, occurred_at DESC);
CREATE INDEX event_log_type_time ON event_log (tenant_id, detail_type, occurred_at DESC);
REVOKE UPDATE, DELETE, TRUNCATE ON event_log FROM strata_app;

CREATE FUNCTION strata_ensure_event_log_partitions(months_ahead integer DEFAULT 2) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    month date := date_trunc('month', least(now(), coalesce((SELECT min(occurred_at) FROM event_log_default), now())));
    last_month date := date_trunc('month', now() + make_interval(months => months_ahead));
    partition text;
    created integer := 0;
BEGIN
    WHILE month <= last_month LOOP
        partition := format('event_log_%s', to_char(month, 'YYYY_MM'));
        IF to_regclass(partition) IS NULL THEN
            EXECUTE format('CREATE TABLE %I (LIKE event_log INCLUDING DEFAULTS INCLUDING CONSTRAINTS)', partition);
            -- rows that arrived before their month's partition existed move out of the default partition
            EXECUTE format('WITH moved AS (DELETE FROM event_log_default WHERE occurred_at >= %L AND occurred_at < %L'
                           ' RETURNING *) INSERT INTO %I SELECT * FROM moved',
                           month, month + interval '1 month', partition);
            EXECUTE format('ALTER TABLE event_log ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)',
                           partition, month, month + interval '1 month');
            -- reachable only through event_log, whose row-level security applies
            EXECUTE format('REVOKE ALL ON %I FROM PUBLIC, strata_app', partition);
            created := created + 1;
        END IF;
        month := month + interval '1 month';
    END LOOP;
    RETURN created;
END
$$;

SELECT strata_ensure_event_log_partitions(2);
