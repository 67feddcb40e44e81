"""L08 supervision: policy as code, human approvals and the audit trail."""
