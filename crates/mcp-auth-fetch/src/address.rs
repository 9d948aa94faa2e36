//! Which addresses the fetcher may connect to: public unicast only, unless an explicit
//! allow-list admits a range (tests, private deployments).
//!
//! The special-use registries of RFC 6890 (and their successors) list ranges that must never be
//! reachable by a URL a client chooses: reaching them is server-side request forgery against
//! the deployment's own network. IPv6 is checked the other way round: only global unicast
//! (`2000::/3`) is admitted, minus its special-use blocks, so IPv4-mapped and -compatible
//! addresses, NAT64, ULA, link-local, site-local and multicast are all refused.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// An address range in CIDR notation (`127.0.0.0/8`, `fd00::/8`, or a bare address).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpRange {
    network: IpAddr,
    prefix: u8,
}

/// A range that does not parse as `address/prefix`.
#[derive(Debug, Clone, thiserror::Error)]
#[error("not an address range: {0:?}")]
pub struct IpRangeError(String);

impl IpRange {
    /// Whether `addr` lies in the range (an IPv4 range never contains an IPv6 address and vice
    /// versa, so `::ffff:127.0.0.1` is not in `127.0.0.0/8`).
    pub fn contains(&self, addr: IpAddr) -> bool {
        match (self.network, addr) {
            (IpAddr::V4(net), IpAddr::V4(a)) => prefix_eq(&net.octets(), &a.octets(), self.prefix),
            (IpAddr::V6(net), IpAddr::V6(a)) => prefix_eq(&net.octets(), &a.octets(), self.prefix),
            _ => false,
        }
    }
}

impl FromStr for IpRange {
    type Err = IpRangeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let error = || IpRangeError(s.to_owned());
        let (addr, prefix) = match s.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (s, None),
        };
        let network: IpAddr = addr.parse().map_err(|_| error())?;
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p.parse::<u8>().map_err(|_| error())?,
            None => max,
        };
        if prefix > max {
            return Err(error());
        }
        Ok(Self { network, prefix })
    }
}

fn prefix_eq(a: &[u8], b: &[u8], prefix: u8) -> bool {
    let full = usize::from(prefix / 8);
    let rest = prefix % 8;
    if a[..full] != b[..full] {
        return false;
    }
    if rest == 0 {
        return true;
    }
    let mask = 0xffu8 << (8 - rest);
    (a[full] & mask) == (b[full] & mask)
}

fn v4(a: u8, b: u8, c: u8, d: u8, prefix: u8) -> IpRange {
    IpRange {
        network: IpAddr::V4(Ipv4Addr::new(a, b, c, d)),
        prefix,
    }
}

fn v6(segments: [u16; 8], prefix: u8) -> IpRange {
    let [a, b, c, d, e, f, g, h] = segments;
    IpRange {
        network: IpAddr::V6(Ipv6Addr::new(a, b, c, d, e, f, g, h)),
        prefix,
    }
}

/// IPv4 special-use blocks (RFC 6890 and the IANA registry).
fn special_v4() -> [IpRange; 15] {
    [
        v4(0, 0, 0, 0, 8),       // "this network", unspecified (RFC 1122)
        v4(10, 0, 0, 0, 8),      // private (RFC 1918)
        v4(100, 64, 0, 0, 10),   // shared address space, CGNAT (RFC 6598)
        v4(127, 0, 0, 0, 8),     // loopback (RFC 1122)
        v4(169, 254, 0, 0, 16),  // link-local (RFC 3927)
        v4(172, 16, 0, 0, 12),   // private (RFC 1918)
        v4(192, 0, 0, 0, 24),    // IETF protocol assignments (RFC 6890)
        v4(192, 0, 2, 0, 24),    // documentation TEST-NET-1 (RFC 5737)
        v4(192, 88, 99, 0, 24),  // 6to4 relay anycast (RFC 7526)
        v4(192, 168, 0, 0, 16),  // private (RFC 1918)
        v4(198, 18, 0, 0, 15),   // benchmarking (RFC 2544)
        v4(198, 51, 100, 0, 24), // documentation TEST-NET-2 (RFC 5737)
        v4(203, 0, 113, 0, 24),  // documentation TEST-NET-3 (RFC 5737)
        v4(224, 0, 0, 0, 4),     // multicast (RFC 5771)
        v4(240, 0, 0, 0, 4),     // reserved, including broadcast 255.255.255.255 (RFC 1112, 919)
    ]
}

/// Special-use blocks inside IPv6 global unicast `2000::/3`.
fn special_v6_global() -> [IpRange; 4] {
    [
        v6([0x2001, 0, 0, 0, 0, 0, 0, 0], 23), // IETF protocol assignments: Teredo, ORCHID, benchmarking (RFC 2928)
        v6([0x2001, 0xdb8, 0, 0, 0, 0, 0, 0], 32), // documentation (RFC 3849)
        v6([0x2002, 0, 0, 0, 0, 0, 0, 0], 16), // 6to4, which embeds any IPv4 address (RFC 3056)
        v6([0x3fff, 0, 0, 0, 0, 0, 0, 0], 20), // documentation (RFC 9637)
    ]
}

/// Whether `addr` is a special-use address the fetcher refuses by default: anything but public
/// unicast.
pub fn is_special_use(addr: IpAddr) -> bool {
    match addr {
        IpAddr::V4(_) => special_v4().iter().any(|range| range.contains(addr)),
        IpAddr::V6(_) => {
            let global_unicast = v6([0x2000, 0, 0, 0, 0, 0, 0, 0], 3);
            !global_unicast.contains(addr)
                || special_v6_global().iter().any(|range| range.contains(addr))
        }
    }
}

/// The address policy: public unicast, plus the ranges an operator explicitly allowed.
#[derive(Debug, Clone, Default)]
pub(crate) struct AddressPolicy {
    pub(crate) allowed: Vec<IpRange>,
}

impl AddressPolicy {
    /// Whether the fetcher may connect to `addr`.
    pub(crate) fn permits(&self, addr: IpAddr) -> bool {
        !is_special_use(addr) || self.allowed.iter().any(|range| range.contains(addr))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn special_use_addresses_are_refused() {
        let refused = [
            "0.0.0.0",
            "0.1.2.3",
            "10.0.0.1",
            "10.255.255.255",
            "100.64.0.1",
            "100.127.255.254",
            "127.0.0.1",
            "127.1.2.3",
            "169.254.169.254",
            "172.16.0.1",
            "172.31.255.255",
            "192.0.0.8",
            "192.0.2.1",
            "192.88.99.1",
            "192.168.1.1",
            "198.18.0.1",
            "198.19.255.1",
            "198.51.100.7",
            "203.0.113.9",
            "224.0.0.1",
            "239.255.255.250",
            "240.0.0.1",
            "255.255.255.255",
            "::",
            "::1",
            "::ffff:127.0.0.1",
            "::ffff:8.8.8.8",
            "::127.0.0.1",
            "64:ff9b::a00:1",
            "100::1",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "fec0::1",
            "ff02::1",
            "2001::1",
            "2001:db8::1",
            "2002:7f00:1::",
            "3fff::1",
        ];
        for addr in refused {
            let ip: IpAddr = addr.parse().unwrap();
            assert!(is_special_use(ip), "{addr} must be refused");
        }
    }

    #[test]
    fn public_unicast_is_admitted() {
        for addr in [
            "8.8.8.8",
            "1.1.1.1",
            "100.63.255.255",
            "100.128.0.1",
            "172.32.0.1",
            "192.0.3.1",
            "198.20.0.1",
            "223.255.255.255",
            "2606:4700::1111",
            "2a00:1450::1",
            "2001:4860::8888",
        ] {
            let ip: IpAddr = addr.parse().unwrap();
            assert!(!is_special_use(ip), "{addr} is public");
        }
    }

    #[test]
    fn the_allow_list_admits_only_its_ranges() {
        let policy = AddressPolicy {
            allowed: vec!["127.0.0.1".parse().unwrap(), "fd00::/8".parse().unwrap()],
        };
        assert!(policy.permits("127.0.0.1".parse().unwrap()));
        assert!(policy.permits("fd00::5".parse().unwrap()));
        assert!(!policy.permits("127.0.0.2".parse().unwrap()));
        assert!(!policy.permits("::ffff:127.0.0.1".parse().unwrap()));
        assert!(!policy.permits("10.0.0.1".parse().unwrap()));
    }

    #[test]
    fn ranges_parse_strictly() {
        for bad in ["", "127.0.0.1/33", "::/129", "localhost", "1.2.3.4/x"] {
            assert!(bad.parse::<IpRange>().is_err(), "{bad}");
        }
    }
}
