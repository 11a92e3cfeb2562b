-- The platform store (PostgreSQL). Timestamps are Unix milliseconds; labels and
-- conditions are JSON text; credentials hold AES-256-GCM ciphertext only.

CREATE TABLE clusters (
    name                  TEXT    NOT NULL PRIMARY KEY,
    display_name          TEXT    NOT NULL,
    provider              TEXT    NOT NULL,
    provider_cluster_id   TEXT,
    region                TEXT,
    api_server            TEXT    NOT NULL,
    ca_pem                TEXT,
    labels                TEXT    NOT NULL,
    conditions            TEXT    NOT NULL,
    credential_expires_at BIGINT,
    created_at            BIGINT  NOT NULL,
    updated_at            BIGINT  NOT NULL,
    version               BIGINT  NOT NULL
);

CREATE TABLE nodes (
    cluster              TEXT    NOT NULL REFERENCES clusters (name) ON DELETE CASCADE,
    node_name            TEXT    NOT NULL,
    provider_instance_id TEXT    NOT NULL,
    node_pool            TEXT,
    created_at           BIGINT  NOT NULL,
    PRIMARY KEY (cluster, node_name),
    UNIQUE (cluster, provider_instance_id)
);

CREATE TABLE registries (
    name       TEXT    NOT NULL PRIMARY KEY,
    provider   TEXT    NOT NULL,
    endpoint   TEXT    NOT NULL,
    labels     TEXT    NOT NULL,
    created_at BIGINT  NOT NULL,
    updated_at BIGINT  NOT NULL,
    version    BIGINT  NOT NULL
);

CREATE TABLE registry_permissions (
    registry   TEXT    NOT NULL REFERENCES registries (name) ON DELETE CASCADE,
    namespace  TEXT    NOT NULL,
    subject    TEXT    NOT NULL,
    access     TEXT    NOT NULL CHECK (access IN ('pull', 'push')),
    created_at BIGINT  NOT NULL,
    PRIMARY KEY (registry, namespace, subject)
);

-- One credential per owner. The owner's row is referenced through the column
-- of its kind, so a credential cannot outlive its cluster or registry.
CREATE TABLE credentials (
    owner_kind    TEXT    NOT NULL,
    owner_name    TEXT    NOT NULL,
    cluster_name  TEXT    REFERENCES clusters (name) ON DELETE CASCADE,
    registry_name TEXT    REFERENCES registries (name) ON DELETE CASCADE,
    kind          TEXT    NOT NULL,
    key_id        TEXT    NOT NULL,
    nonce         BYTEA   NOT NULL,
    ciphertext    BYTEA   NOT NULL,
    created_at    BIGINT  NOT NULL,
    updated_at    BIGINT  NOT NULL,
    PRIMARY KEY (owner_kind, owner_name),
    CHECK (
        (owner_kind = 'cluster' AND cluster_name IS NOT NULL AND cluster_name = owner_name AND registry_name IS NULL)
        OR (owner_kind = 'registry' AND registry_name IS NOT NULL AND registry_name = owner_name AND cluster_name IS NULL)
        OR (owner_kind = 'provider' AND cluster_name IS NULL AND registry_name IS NULL)
    )
);
CREATE INDEX credentials_by_key ON credentials (key_id);
CREATE INDEX credentials_by_cluster ON credentials (cluster_name);
CREATE INDEX credentials_by_registry ON credentials (registry_name);

CREATE TABLE operations (
    seq               BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id                TEXT    NOT NULL UNIQUE,
    kind              TEXT    NOT NULL,
    provider          TEXT    NOT NULL,
    target            TEXT    NOT NULL,
    state             TEXT    NOT NULL CHECK (state IN ('pending', 'running', 'succeeded', 'failed')),
    last_error        TEXT,
    vendor_request_id TEXT,
    created_at        BIGINT  NOT NULL,
    updated_at        BIGINT  NOT NULL,
    version           BIGINT  NOT NULL
);
CREATE INDEX operations_by_state ON operations (state);
