//! The firmware's CPUID policy table in `sev_firmware::snp::cpuid::profile`
//! against the rule list in `shared/spec/snp-cpuid-rules.txt` (the Genoa
//! firmware's per-leaf, per-register rules): the same leaves, in the same
//! order, with the same rule for every register.

use sev_firmware::snp::cpuid::profile::{PolicyLeaf, RegRule, POLICY_TABLE};
use sevkit_conformance::read_text;

fn rule(name: &str) -> RegRule {
    match name {
        "EXACT" => RegRule::Exact,
        "MASK" => RegRule::Mask,
        "LESSTHAN" => RegRule::LessThan,
        "UNCHECKED" => RegRule::Unchecked,
        "CUSTOM" => RegRule::Custom,
        other => panic!("unknown rule {other:?}"),
    }
}

fn hex(field: &str) -> u32 {
    u32::from_str_radix(field.trim_start_matches("0x"), 16)
        .unwrap_or_else(|e| panic!("{field:?}: {e}"))
}

/// One line: `0x00000006 ecx=0x00000000   custom=NULL   rules(eax,ebx,ecx,edx)=['MASK', 'EXACT', 'MASK', 'EXACT']`.
fn parse(line: &str) -> PolicyLeaf {
    let mut words = line.split_whitespace();
    let leaf = hex(words.next().expect("leaf"));
    let sub = hex(words
        .next()
        .and_then(|w| w.strip_prefix("ecx="))
        .expect("ecx="));
    let rules_text = line.split_once("rules(eax,ebx,ecx,edx)=").expect("rules").1;
    let names: Vec<&str> = rules_text
        .trim_matches(|c| c == '[' || c == ']')
        .split(',')
        .map(|r| r.trim().trim_matches('\''))
        .collect();
    assert_eq!(names.len(), 4, "{line}");
    PolicyLeaf {
        leaf,
        sub,
        rules: [
            rule(names[0]),
            rule(names[1]),
            rule(names[2]),
            rule(names[3]),
        ],
    }
}

#[test]
#[cfg_attr(
    not(sevkit_vectors),
    ignore = "needs shared/ (shared/spec beside shared/vectors; set SEVKIT_VECTORS)"
)]
fn policy_table_is_the_firmwares_rule_list() {
    let text = read_text("../spec/snp-cpuid-rules.txt");
    let listed: Vec<PolicyLeaf> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(parse)
        .collect();
    assert_eq!(listed.len(), 57, "the rule list has 57 leaves");
    assert_eq!(listed.len(), POLICY_TABLE.len());
    for (i, (want, got)) in listed.iter().zip(POLICY_TABLE.iter()).enumerate() {
        assert_eq!(got, want, "entry {i}");
    }
}
