//! Holds no code: the package exists for its cross-service tests in `tests/`.
