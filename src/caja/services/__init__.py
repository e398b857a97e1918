"""Use cases: one async function per operation, one transaction each."""
