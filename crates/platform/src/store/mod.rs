//! The platform store (being written): see [`records`].

pub mod records;

pub use records::*;
