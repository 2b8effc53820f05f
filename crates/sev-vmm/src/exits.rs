//! What the host does when the guest exits to it: SNP guest requests as KVM
//! forwards them ([`guest_request`]) and the certificates KVM hands an SNP
//! guest with an extended request ([`certs`]).

pub mod certs;
pub mod guest_request;
