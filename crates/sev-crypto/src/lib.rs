//! AMD SEV cryptographic constructions.
