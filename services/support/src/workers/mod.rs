//! Background work of support, run as tokio tasks inside the service process: the
//! notifications consumer (events → notifications) and the live-notification listener
//! (`LISTEN` → the open SSE streams). Both report to `/healthz`.

pub mod consumer;
pub mod live;
