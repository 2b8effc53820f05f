//! AMD SEV / SEV-SNP verification policy.
