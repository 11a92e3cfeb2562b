-- API tokens of the platform's REST service and the audit log of its
-- mutations (PostgreSQL). A token is kept only as the SHA-256 of its secret.

CREATE TABLE api_tokens (
    id           TEXT    NOT NULL PRIMARY KEY,
    name         TEXT    NOT NULL,
    role         TEXT    NOT NULL,
    clusters     TEXT,
    secret_hash  TEXT    NOT NULL UNIQUE,
    created_at   BIGINT  NOT NULL,
    expires_at   BIGINT,
    last_used_at BIGINT
);

CREATE TABLE audit_log (
    seq      BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at       BIGINT  NOT NULL,
    token_id TEXT,
    method   TEXT    NOT NULL,
    route    TEXT    NOT NULL,
    target   TEXT    NOT NULL,
    status   BIGINT  NOT NULL,
    result   TEXT    NOT NULL
);
CREATE INDEX audit_log_by_token ON audit_log (token_id);
