DROP TABLE IF EXISTS backup_logs;
