pub mod address;
pub mod password;
pub mod secrets;
pub mod throttle;
pub mod tokens;
pub mod twofa;
