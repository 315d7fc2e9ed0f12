DROP TABLE admin_audit_log;
DROP TABLE openai_keys;
