DROP TABLE fallback_logs;
DROP TABLE kb_templates;
DROP TABLE knowledge_entries;
