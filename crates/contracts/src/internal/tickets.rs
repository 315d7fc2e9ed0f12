//! Internal API types: tickets (see internal/mod.rs).
//!
//! Deleting a ticket is support's public route (`DELETE /api/tickets/{id}`, manager only, 204;
//! docs/panels.md "Ticket delete"), which the dashboard calls directly: no internal call and so
//! no type here. A deleted ticket (`tickets.deleted_at` set) is left out by support's routes and
//! by admin's ticket list and dashboard counts alike.
