//! Who a client is, for everything the server keeps per client: the post rate, mutes,
//! connections, a share of the files, wrong keys, the phones' clocks.
//!
//! An IPv4 address is one client. An IPv6 client is its /64: a phone picks new
//! addresses within its network's /64 as it likes (privacy addresses), so keyed by
//! the whole address one phone could be endless clients.

use std::net::{IpAddr, Ipv6Addr};

/// A client as the per-client limits count it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClientKey(IpAddr);

impl From<IpAddr> for ClientKey {
    fn from(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(_) => ClientKey(ip),
            // An IPv4 client seen through an IPv6 socket is that IPv4 client.
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => ClientKey(IpAddr::V4(v4)),
                None => {
                    let prefix = u128::from(v6) & !((1u128 << 64) - 1);
                    ClientKey(IpAddr::V6(Ipv6Addr::from(prefix)))
                }
            },
        }
    }
}

impl ClientKey {
    /// The client at an IPv4 address.
    #[cfg(test)]
    pub const fn v4(ip: [u8; 4]) -> ClientKey {
        ClientKey(IpAddr::V4(std::net::Ipv4Addr::new(
            ip[0], ip[1], ip[2], ip[3],
        )))
    }
}

impl std::fmt::Display for ClientKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            IpAddr::V4(v4) => write!(f, "{v4}"),
            IpAddr::V6(v6) => write!(f, "{v6}/64"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(text: &str) -> ClientKey {
        ClientKey::from(text.parse::<IpAddr>().unwrap())
    }

    #[test]
    fn an_ipv6_client_is_its_64_and_an_ipv4_one_its_address() {
        assert_eq!(key("2001:db8:1:2::5"), key("2001:db8:1:2:ffff:1:2:3"));
        assert_ne!(key("2001:db8:1:2::5"), key("2001:db8:1:3::5"));
        assert_eq!(key("2001:db8:1:2::5").to_string(), "2001:db8:1:2::/64");
        assert_ne!(key("192.168.1.20"), key("192.168.1.21"));
        assert_eq!(key("::ffff:192.168.1.20"), key("192.168.1.20"));
    }
}
