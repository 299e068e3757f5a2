"""The DVC stages (verify, prepare, train, render), the seed sweep, and what they share (stage, tracking)."""
