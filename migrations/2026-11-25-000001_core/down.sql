DROP TABLE inbox;
DROP TABLE outbox;
DROP TABLE twofa_recovery_codes;
DROP TABLE password_reset_tokens;
DROP TABLE email_verification_tokens;
DROP TABLE refresh_tokens;
DROP TABLE sessions;
DROP TABLE users;
