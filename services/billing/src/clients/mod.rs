//! Billing's calls to other parties: the Zarinpal payment gateway.

pub mod zarinpal;
