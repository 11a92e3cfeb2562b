-- Who probes which cluster's health: one platform instance at a time holds
-- a cluster's lease and renews it; when it stops renewing (the process
-- died), another takes the lease over once it has expired. Removed with the
-- cluster. Times are Unix milliseconds.

CREATE TABLE probe_leases (
    cluster     TEXT    NOT NULL PRIMARY KEY REFERENCES clusters (name) ON DELETE CASCADE,
    holder      TEXT    NOT NULL,
    expires_at  BIGINT  NOT NULL,
    probed_at   BIGINT
);
CREATE INDEX probe_leases_by_holder ON probe_leases (holder);
