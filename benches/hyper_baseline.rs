//! Bare hyper baseline (placeholder until written).
fn main() {}
