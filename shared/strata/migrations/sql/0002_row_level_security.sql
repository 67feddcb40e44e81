-- Row-level security: the second wall behind each layer's own tenant checks. Tenant-scoped transactions
-- (strata.db.transaction(tenant_id)) switch to the unprivileged strata_app role and set app.tenant_id;
-- every table with a tenant_id then shows and accepts only that tenant's rows.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'strata_app') THEN
        CREATE ROLE strata_app NOLOGIN;
    END IF;
END
$$;
GRANT strata_app TO CURRENT_USER;
GRANT USAGE ON SCHEMA public TO strata_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO strata_app;
REVOKE ALL ON schema_migrations FROM strata_app;
-- Partitions get no grants: the application reaches them only through their parent, whose policy applies.
-- (No default privileges either: each later migration grants its own tables explicitly.)
DO $$
DECLARE
    p text;
BEGIN
    FOR p IN SELECT c.relname FROM pg_class c
             WHERE c.relispartition AND c.relkind IN ('r', 'p') AND c.relnamespace = 'public'::regnamespace LOOP
        EXECUTE format('REVOKE ALL ON %I FROM strata_app', p);
    END LOOP;
END
$$;

CREATE FUNCTION strata_tenant() RETURNS uuid LANGUAGE sql STABLE
    AS $$ SELECT nullif(current_setting('app.tenant_id', true), '')::uuid $$;

-- What every tenant table gets: the application role may read and write it, only for the transaction's tenant.
-- Later migrations call this for each table they create.
CREATE FUNCTION strata_protect_tenant_table(tbl regclass, privileges text DEFAULT 'SELECT, INSERT, UPDATE, DELETE')
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format('GRANT %s ON %s TO strata_app', privileges, tbl);
    EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', tbl);
    EXECUTE format('CREATE POLICY tenant_isolation ON %s USING (tenant_id = strata_tenant()) '
                   'WITH CHECK (tenant_id = strata_tenant())', tbl);
END
$$;

DO $$
DECLARE
    t text;
BEGIN
    FOR t IN
        SELECT c.table_name FROM information_schema.columns c
        JOIN information_schema.tables i ON i.table_name = c.table_name AND i.table_schema = c.table_schema
        WHERE c.table_schema = 'public' AND c.column_name = 'tenant_id' AND i.table_type = 'BASE TABLE'
          AND NOT EXISTS (SELECT 1 FROM pg_inherits h JOIN pg_class k ON k.oid = h.inhrelid
                          WHERE k.relname = c.table_name)
    LOOP
        PERFORM strata_protect_tenant_table(t::regclass);
    END LOOP;
END
$$;
