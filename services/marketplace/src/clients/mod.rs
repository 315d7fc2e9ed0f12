//! Calls the marketplace makes to parties outside itself: automation vendors (provisioning and
//! health checks), through the guarded outbound policy that keeps staff-typed URLs away from
//! the platform's own network.

pub mod kb;
pub mod outbound;
pub mod vendor;
