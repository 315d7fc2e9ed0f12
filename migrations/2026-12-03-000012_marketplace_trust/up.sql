-- Telegram bot tokens sealed at rest. The token itself is kept only as an AES-256-GCM
-- ciphertext (nonce || ciphertext || tag, bound to the row id) under the marketplace's key,
-- which SQL does not have: rows stored in plaintext before this migration are re-sealed by
-- the marketplace itself (at start, and whenever it reads such a row), which then clears
-- the legacy column. "One bot, one automation" moves to a keyed hash of the token, because
-- two ciphertexts of one token differ.
ALTER TABLE user_automations
    ADD COLUMN telegram_bot_token_sealed BYTEA,
    ADD COLUMN telegram_bot_token_hash   BYTEA,
    ADD CONSTRAINT user_automations_bot_token_sealed_with_hash
        CHECK ((telegram_bot_token_sealed IS NULL) = (telegram_bot_token_hash IS NULL)),
    ADD CONSTRAINT user_automations_bot_token_hash_len
        CHECK (telegram_bot_token_hash IS NULL OR octet_length(telegram_bot_token_hash) = 32),
    -- 12-byte nonce + 16-byte tag + a non-empty token.
    ADD CONSTRAINT user_automations_bot_token_sealed_len
        CHECK (telegram_bot_token_sealed IS NULL OR octet_length(telegram_bot_token_sealed) > 28);

CREATE UNIQUE INDEX user_automations_telegram_bot_token_hash_key
    ON user_automations (telegram_bot_token_hash) WHERE telegram_bot_token_hash IS NOT NULL;

-- Finds the rows still to re-seal without scanning the table.
CREATE INDEX user_automations_telegram_bot_token_legacy_idx
    ON user_automations (id) WHERE telegram_bot_token IS NOT NULL;

COMMENT ON COLUMN user_automations.telegram_bot_token IS
    'Legacy plaintext bot token (before sealing); re-sealed and cleared by the marketplace';
