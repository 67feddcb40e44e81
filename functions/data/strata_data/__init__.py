"""L01 data layer: the system of record for shared entities, the event archive and the outbox sweeper."""
