//! [`VmConfig::validate`]: the host checks QEMU makes when KVM starts
//! (`kvm_get_vm_type`, `sev_kvm_type`, `sev_common_kvm_init`), the policy
//! checks KVM and the firmware make at LAUNCH_START, and the
//! host-independent rules again for configurations built by hand.

use sev_os::excerpt;

use super::draft::check_snp_smm;
use super::error::{ConfigError, ConfigErrorKind as Kind, Origin};
use super::object::{check_id_block_auth, check_reduced_phys_bits, id_wellformed, object_origin};
use super::{ConfidentialGuest, HostCaps, OnOffAuto, VmConfig, MAX_CPUS};

/// See [`VmConfig::validate`].
pub(crate) fn validate(cfg: &VmConfig, host: HostCaps) -> Result<(), ConfigError> {
    static_rules(cfg)?;
    let Some(guest) = &cfg.guest else {
        return Ok(());
    };
    let origin = object_origin(Some(guest.qom_type()), Some(guest.id()));
    let err = |kind, property: Option<&str>, message: String| {
        ConfigError::new(kind, origin.clone(), property, message)
    };

    // KVM_CREATE_VM with the guest's VM type.
    match guest {
        ConfidentialGuest::Snp(_) if !host.snp => {
            return Err(err(
                Kind::HostUnsupported,
                None,
                "vm-type SEV-SNP not supported by KVM".to_owned(),
            ));
        }
        ConfidentialGuest::Sev(sev)
            if sev.legacy_vm_type == OnOffAuto::Off && sev.policy.es() && !host.sev_es =>
        {
            return Err(err(
                Kind::HostUnsupported,
                Some("legacy-vm-type"),
                "SEV: host kernel does not support requested KVM_X86_SEV_ES_VM VM type. To \
                 allow use of the legacy KVM_X86_DEFAULT_VM VM type, the 'legacy-vm-type' \
                 argument must be set to 'on' or 'auto' for the sev-guest object."
                    .to_owned(),
            ));
        }
        _ => {}
    }

    // sev_common_kvm_init.
    let common = guest.common();
    let requested = common.cbitpos.unwrap_or(0);
    if requested != host.cbitpos {
        return Err(err(
            Kind::HostMismatch,
            Some("cbitpos"),
            format!(
                "cbitpos check failed, host '{}' requested '{requested}'",
                host.cbitpos
            ),
        ));
    }
    check_reduced_phys_bits(&origin, common.reduced_phys_bits)?;
    if let ConfidentialGuest::Sev(sev) = guest {
        if sev.policy.es() && !host.sev_es {
            return Err(err(
                Kind::HostUnsupported,
                Some("policy"),
                "guest policy requires SEV-ES, but host SEV-ES support unavailable".to_owned(),
            ));
        }
    }

    // LAUNCH_START / SNP_LAUNCH_START: the policy.
    let policy_check = match guest {
        ConfidentialGuest::Sev(sev) => sev.policy.validate(),
        ConfidentialGuest::Snp(snp) => snp.policy.validate(),
    };
    policy_check.map_err(|e| {
        err(
            Kind::InvalidPolicy,
            Some("policy"),
            format!("the firmware rejects this policy: {e}"),
        )
    })?;
    Ok(())
}

/// The host-independent rules parsing enforces, for hand-built values.
fn static_rules(cfg: &VmConfig) -> Result<(), ConfigError> {
    let machine = || Origin::Option("-machine".to_owned());
    if cfg.kernel.is_none() {
        if cfg.append.is_some() {
            return Err(ConfigError::new(
                Kind::Conflict,
                Origin::Option("-append".into()),
                None,
                "-append only allowed with -kernel option",
            ));
        }
        if cfg.initrd.is_some() {
            return Err(ConfigError::new(
                Kind::Conflict,
                Origin::Option("-initrd".into()),
                None,
                "-initrd only allowed with -kernel option",
            ));
        }
    }
    if cfg.smp == 0 || cfg.smp > MAX_CPUS {
        return Err(ConfigError::new(
            Kind::OutOfRange,
            Origin::Option("-smp".into()),
            Some("cpus"),
            format!(
                "Invalid SMP CPUs {}. The max CPUs supported by machine '{}' is {MAX_CPUS}",
                cfg.smp,
                excerpt(&cfg.machine.machine_type)
            ),
        ));
    }
    if cfg.memory == 0 {
        return Err(ConfigError::new(
            Kind::OutOfRange,
            Origin::Option("-m".into()),
            Some("size"),
            "specified RAM size must be greater than 0",
        ));
    }
    if !sev_measure::VCPU_TYPES
        .iter()
        .any(|t| t.name == cfg.cpu_model)
    {
        return Err(ConfigError::new(
            Kind::InvalidValue,
            Origin::Option("-cpu".into()),
            Some("model"),
            format!("unable to find CPU model '{}'", excerpt(&cfg.cpu_model)),
        ));
    }
    let cgs = cfg.machine.confidential_guest_support.as_deref();
    match (&cfg.guest, cgs) {
        (Some(guest), Some(id)) if guest.id() == id => {}
        (_, Some(id)) => {
            return Err(ConfigError::new(
                Kind::ObjectNotFound,
                machine(),
                Some("confidential-guest-support"),
                format!("Device '{}' not found", excerpt(id)),
            ))
        }
        (Some(guest), None) => {
            return Err(ConfigError::new(
                Kind::Conflict,
                machine(),
                Some("confidential-guest-support"),
                format!(
                    "the guest object '{}' is not referenced by confidential-guest-support",
                    excerpt(guest.id())
                ),
            ))
        }
        (None, None) => {}
    }
    check_snp_smm("-machine", cfg.guest.as_ref(), cfg.machine.smm)?;
    if let Some(guest) = &cfg.guest {
        let origin = object_origin(Some(guest.qom_type()), Some(guest.id()));
        if !id_wellformed(guest.id()) {
            return Err(super::object::bad_id_error(origin));
        }
        if let ConfidentialGuest::Snp(snp) = guest {
            check_id_block_auth(&origin, snp)?;
        }
    }
    Ok(())
}
