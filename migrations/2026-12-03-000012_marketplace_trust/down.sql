-- The sealed tokens cannot be turned back into plaintext here (SQL has no key): reverting
-- disconnects every bot, and customers connect them again.
COMMENT ON COLUMN user_automations.telegram_bot_token IS NULL;
DROP INDEX user_automations_telegram_bot_token_legacy_idx;
DROP INDEX user_automations_telegram_bot_token_hash_key;
ALTER TABLE user_automations
    DROP CONSTRAINT user_automations_bot_token_sealed_len,
    DROP CONSTRAINT user_automations_bot_token_hash_len,
    DROP CONSTRAINT user_automations_bot_token_sealed_with_hash,
    DROP COLUMN telegram_bot_token_hash,
    DROP COLUMN telegram_bot_token_sealed;
