DROP TABLE notifications;
DROP TABLE ticket_attachments;
DROP TABLE ticket_messages;
DROP TABLE tickets;
