//! Hot-path benchmarks (placeholder until written).
fn main() {}
