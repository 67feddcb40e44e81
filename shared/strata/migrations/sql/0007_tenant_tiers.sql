-- L09: each tenant's rate-limit tier (tiers themselves are configuration: STRATA_RATE_LIMIT_TIERS).
ALTER TABLE tenants ADD COLUMN tier text NOT NULL DEFAULT 'standard';
