//! Message templates and transports (placeholder, being written).
