//! Envelope encryption of personal fields (placeholder, being written).
