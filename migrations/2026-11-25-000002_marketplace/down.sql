DROP TABLE token_ledger;
DROP TABLE user_automations;
DROP TABLE automations;
