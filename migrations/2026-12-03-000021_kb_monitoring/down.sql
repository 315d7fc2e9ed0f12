DROP TABLE kb_status_history;
