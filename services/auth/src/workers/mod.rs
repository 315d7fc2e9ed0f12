//! Background work of auth: the password hashing pool (its own threads, fed by one queue).

pub mod hashing;
