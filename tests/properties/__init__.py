"""Property-based proofs of the rollback invariants (Hypothesis stateful + exhaustive small scope)."""
