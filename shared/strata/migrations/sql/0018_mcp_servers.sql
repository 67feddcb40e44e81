-- L03 tool execution: remote MCP servers a tenant registered by URL. Their tools (as last listed) become the
-- tenant's Strata tools, named mcp_<server>_<tool>; the tenant's settings of each live in tool_settings as for a
-- built-in.
CREATE TABLE mcp_servers (
    server_id    uuid PRIMARY KEY,
    tenant_id    uuid NOT NULL,
    name         text NOT NULL,
    url          text NOT NULL,
    headers      jsonb NOT NULL DEFAULT '{}',   -- sent on every request (e.g. Authorization); never shown back
    enabled      boolean NOT NULL DEFAULT true,
    server_info  jsonb NOT NULL DEFAULT '{}',   -- what initialize answered: name, version, protocol version
    tools        jsonb NOT NULL DEFAULT '[]',   -- [{name, remote_name, description, input_schema, output_schema}]
    version      integer NOT NULL DEFAULT 1,    -- each refresh of the tool list is a new version
    refreshed_at timestamptz NOT NULL DEFAULT now(),
    created_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, name)
);
SELECT strata_protect_tenant_table('mcp_servers');
