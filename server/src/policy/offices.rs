//! Each office's own rules (rule 7): who of the office may export a timeline, from which networks its
//! members download files, and its retention. An office without rules follows the defaults.

use std::net::IpAddr;

use renkei_protocol::{GroupKind, OfficeRules, Profession};

use super::groups::{GroupAction, GroupDenied, authorize};
use crate::domain::{GroupRecord, Membership};

/// Whether a member may export a group's timeline: the attending physician always; another active member
/// of a patient group when their office's rules name their profession. An outsider learns nothing.
pub fn may_export_timeline(
    group: &GroupRecord,
    membership: Option<&Membership>,
    profession: Profession,
    office: Option<&OfficeRules>,
) -> Result<(), GroupDenied> {
    match authorize(group, membership, GroupAction::Export) {
        Err(GroupDenied::Forbidden)
            if group.kind == GroupKind::Patient
                && authorize(group, membership, GroupAction::View).is_ok()
                && office.is_some_and(|o| o.timeline_export.contains(&profession)) =>
        {
            Ok(())
        }
        other => other,
    }
}

/// A network in CIDR notation (`10.1.0.0/16`, `2001:db8::/32`; a bare address is one host).
pub fn parse_network(raw: &str) -> Option<(IpAddr, u8)> {
    let (addr, bits) = match raw.trim().split_once('/') {
        Some((a, b)) => (a.parse::<IpAddr>().ok()?, b.parse::<u8>().ok()?),
        None => {
            let a = raw.trim().parse::<IpAddr>().ok()?;
            (a, if a.is_ipv4() { 32 } else { 128 })
        }
    };
    let max = if addr.is_ipv4() { 32 } else { 128 };
    (bits <= max).then_some((addr, bits))
}

fn in_network(addr: IpAddr, (net, bits): (IpAddr, u8)) -> bool {
    let mask = |width: u32| if bits == 0 { 0 } else { u128::MAX << (width - u32::from(bits)) };
    // An IPv4 client seen on an IPv6 socket is the same client.
    let addr = match addr {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(addr, IpAddr::V4),
        v4 => v4,
    };
    match (addr, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let m = u32::try_from(mask(32) & u128::from(u32::MAX)).unwrap_or(u32::MAX);
            u32::from(a) & m == u32::from(n) & m
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => u128::from(a) & mask(128) == u128::from(n) & mask(128),
        _ => false,
    }
}

/// Whether a member of `office` may download a shared file from `addr`: from anywhere unless the office
/// named its networks; an unknown address is outside them.
pub fn may_download_from(office: Option<&OfficeRules>, addr: Option<IpAddr>) -> bool {
    let Some(networks) = office.map(|o| &o.attachment_networks).filter(|n| !n.is_empty()) else {
        return true;
    };
    addr.is_some_and(|a| networks.iter().filter_map(|n| parse_network(n)).any(|n| in_network(a, n)))
}

/// The retention that applies to a group: its attending physician's office's, else the server's.
pub fn retention_days(server: Option<u32>, office: Option<&OfficeRules>) -> Option<u32> {
    office.and_then(|o| o.purge_archived_after_days).or(server)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn office(networks: &[&str]) -> OfficeRules {
        OfficeRules {
            organisation: "o".into(),
            timeline_export: vec![Profession::Nurse],
            attachment_networks: networks.iter().map(|n| (*n).to_owned()).collect(),
            purge_archived_after_days: None,
            updated_at: time::OffsetDateTime::UNIX_EPOCH,
        }
    }

    #[test]
    fn networks_are_read_strictly_and_matched_by_prefix() {
        assert_eq!(parse_network("10.1.0.0/16"), Some(("10.1.0.0".parse().unwrap(), 16)));
        assert_eq!(parse_network("192.0.2.7"), Some(("192.0.2.7".parse().unwrap(), 32)));
        assert_eq!(parse_network("2001:db8::/32"), Some(("2001:db8::".parse().unwrap(), 32)));
        for bad in ["10.0.0.0/33", "10.0.0/8", "", "x/8", "::/129", "10.0.0.0/-1"] {
            assert_eq!(parse_network(bad), None, "{bad}");
        }
        let ip = |s: &str| Some(s.parse::<IpAddr>().unwrap());
        let rules = office(&["10.1.0.0/16", "2001:db8::/32"]);
        assert!(may_download_from(Some(&rules), ip("10.1.200.3")));
        assert!(may_download_from(Some(&rules), ip("::ffff:10.1.0.9")), "IPv4 on an IPv6 socket");
        assert!(may_download_from(Some(&rules), ip("2001:db8:1::5")));
        assert!(!may_download_from(Some(&rules), ip("10.2.0.1")));
        assert!(!may_download_from(Some(&rules), None), "an unknown address is outside");
        assert!(may_download_from(Some(&office(&["0.0.0.0/0"])), ip("203.0.113.9")));
        assert!(may_download_from(Some(&office(&[])), ip("203.0.113.9")), "no networks: anywhere");
        assert!(may_download_from(None, None), "no rules: anywhere");
    }

    #[test]
    fn an_offices_retention_overrides_the_servers() {
        let mut rules = office(&[]);
        assert_eq!(retention_days(Some(1826), Some(&rules)), Some(1826));
        rules.purge_archived_after_days = Some(3650);
        assert_eq!(retention_days(Some(1826), Some(&rules)), Some(3650));
        assert_eq!(retention_days(None, Some(&rules)), Some(3650));
        assert_eq!(retention_days(None, None), None);
    }
}
