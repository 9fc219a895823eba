//! One request to the TaurusDB API and the classification of its answer.

pub mod signer;
