-- Support: tickets with their messages and attachments, and the notifications fed by events.

CREATE TABLE tickets (
    id                 BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- Not CASCADE: the thread also holds staff replies and is support's history. Accounts are
    -- deactivated and anonymised, never hard-deleted.
    user_id            BIGINT      NOT NULL REFERENCES users (id),
    title              TEXT        NOT NULL,   -- the API's `subject`
    description        TEXT        NOT NULL,   -- the opening message as written
    status             TEXT        NOT NULL DEFAULT 'open',
    -- Two scales on purpose: `importance` is what the customer chose in the panel, `priority`
    -- what staff set for triage (it starts as the customer's importance).
    priority           TEXT        NOT NULL DEFAULT 'medium',
    importance         TEXT        NOT NULL DEFAULT 'medium',
    category           TEXT,
    -- The ticket survives its user automation.
    user_automation_id BIGINT      REFERENCES user_automations (id) ON DELETE SET NULL,
    -- Deleting a staff account unassigns its tickets.
    assigned_to        BIGINT      REFERENCES users (id) ON DELETE SET NULL,
    created_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    closed_at          TIMESTAMPTZ,
    CONSTRAINT tickets_status_check
        CHECK (status IN ('open', 'pending', 'in_progress', 'resolved', 'closed')),
    CONSTRAINT tickets_priority_check CHECK (priority IN ('low', 'medium', 'high', 'urgent')),
    CONSTRAINT tickets_importance_check CHECK (importance IN ('low', 'medium', 'high', 'urgent'))
);
CREATE INDEX tickets_user_created_idx ON tickets (user_id, created_at);
CREATE INDEX tickets_status_created_idx ON tickets (status, created_at);
CREATE INDEX tickets_assigned_to_idx ON tickets (assigned_to) WHERE assigned_to IS NOT NULL;
CREATE INDEX tickets_user_automation_id_idx ON tickets (user_automation_id) WHERE user_automation_id IS NOT NULL;

CREATE TABLE ticket_messages (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    ticket_id  BIGINT      NOT NULL REFERENCES tickets (id) ON DELETE CASCADE,
    -- No cascade: a reply keeps its author; an account that wrote messages is deactivated,
    -- not deleted.
    author_id  BIGINT      NOT NULL REFERENCES users (id),
    is_staff   BOOLEAN     NOT NULL DEFAULT FALSE,
    body       TEXT        NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX ticket_messages_ticket_created_idx ON ticket_messages (ticket_id, created_at);
CREATE INDEX ticket_messages_author_id_idx ON ticket_messages (author_id);

CREATE TABLE ticket_attachments (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- Cascades with its message (and so with its ticket); support removes the stored file.
    message_id   BIGINT      NOT NULL REFERENCES ticket_messages (id) ON DELETE CASCADE,
    filename     TEXT        NOT NULL,   -- the uploader's name, for display and Content-Disposition only
    content_type TEXT        NOT NULL,
    size         BIGINT      NOT NULL,   -- bytes
    -- Server-generated key under the attachment directory; never derived from user input.
    storage_key  TEXT        NOT NULL UNIQUE,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT ticket_attachments_size_check CHECK (size >= 0),
    -- Defence in depth against path traversal: relative, no "..", no backslash.
    CONSTRAINT ticket_attachments_storage_key_check CHECK (
        storage_key <> '' AND left(storage_key, 1) <> '/'
        AND strpos(storage_key, '..') = 0 AND strpos(storage_key, '\') = 0)
);
CREATE INDEX ticket_attachments_message_id_idx ON ticket_attachments (message_id);

CREATE TABLE notifications (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id         BIGINT      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- The panel's `type` filter values; named `kind` because `type` is a Rust keyword.
    kind            TEXT        NOT NULL,
    title           TEXT        NOT NULL,
    body            TEXT        NOT NULL,
    data            JSONB       NOT NULL DEFAULT '{}'::jsonb,
    read_at         TIMESTAMPTZ,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- The event that caused it: a redelivered event (or a re-run broadcast) notifies once.
    -- Null for notifications not caused by an event; NULLs never collide.
    source_event_id UUID,
    CONSTRAINT notifications_kind_check
        CHECK (kind IN ('payment', 'ticket', 'automation', 'admin', 'system')),
    CONSTRAINT notifications_user_source_event_key UNIQUE (user_id, source_event_id)
);
CREATE INDEX notifications_user_created_idx ON notifications (user_id, created_at DESC);
-- Unread count and the unread-only list.
CREATE INDEX notifications_unread_idx ON notifications (user_id, created_at DESC) WHERE read_at IS NULL;
