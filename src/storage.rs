//! Storage for the registry: where objects live ([`layout`]) and the filesystem primitives
//! that keep them crash-safe ([`fs`]).
//!
//! Limitation: only the filesystem backend exists; the registry engine calls it directly.
//! An object-store backend will need the engine's storage calls lifted into a trait.

pub mod fs;
pub mod layout;

pub use layout::Layout;
