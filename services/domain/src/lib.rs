//! chirp's domain rules, written once: what an id is ([`ids`]: time-ordered
//! snowflakes, the cursor of every list), what input is valid ([`input`]:
//! the gateway answers a 400 by them before it calls anyone, and the owning
//! service applies them again since it trusts no caller), and how a list
//! pages ([`paging`]: by key, never by offset).
//!
//! Pure functions and small types: no I/O, no runtime, nothing about how a
//! service is run ([`chirp-runtime`]) or called ([`chirp-grpc`]), so that a
//! rule reads the same wherever it is applied.
//!
//! [`chirp-runtime`]: ../chirp_runtime/index.html
//! [`chirp-grpc`]: ../chirp_grpc/index.html

pub mod ids;
pub mod input;
pub mod paging;
