-- Objects and their versions. Values are stored only as envelopes sealed
-- under the object's key context, with the object id and version id as AAD.
CREATE TABLE vault_objects (
    id TEXT PRIMARY KEY NOT NULL,
    name TEXT NOT NULL UNIQUE,
    key_context TEXT NOT NULL,
    current_version_id TEXT NOT NULL,
    version_count INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    updated_by_id TEXT NOT NULL,
    updated_by_name TEXT NOT NULL
);
CREATE INDEX vault_objects_created ON vault_objects (created_at, id);
CREATE INDEX vault_objects_updated ON vault_objects (updated_at);

CREATE TABLE vault_object_versions (
    id TEXT PRIMARY KEY NOT NULL,
    object_id TEXT NOT NULL REFERENCES vault_objects (id) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    size INTEGER NOT NULL,
    etag TEXT NOT NULL,
    key_id TEXT NOT NULL,
    envelope BLOB NOT NULL,
    UNIQUE (object_id, seq)
);
