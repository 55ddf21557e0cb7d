//! What the start-up banner tells people: the URLs a phone on the LAN can open, and
//! a QR code of the first, drawn with text so that it shows in any terminal.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

/// The machine's IPv4 addresses a phone could reach: not loopback, not link-local;
/// private ranges first, as that is where a home or office LAN lives.
pub fn lan_ipv4() -> Vec<Ipv4Addr> {
    let mut addrs: Vec<Ipv4Addr> = if_addrs::get_if_addrs()
        .unwrap_or_default()
        .into_iter()
        .filter_map(|iface| match iface.ip() {
            IpAddr::V4(ip) => Some(ip),
            IpAddr::V6(_) => None,
        })
        .collect();
    order(&mut addrs);
    addrs
}

fn order(addrs: &mut Vec<Ipv4Addr>) {
    addrs.retain(|ip| !ip.is_loopback() && !ip.is_link_local() && !ip.is_unspecified());
    addrs.sort_by_key(|ip| (!ip.is_private(), *ip));
    addrs.dedup();
}

/// The machine's host name, for `http://<name>.local/` (mDNS, which Raspberry Pi OS
/// and most phones speak).
pub fn hostname() -> Option<String> {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .ok()?;
    let name = name.trim();
    let valid = !name.is_empty()
        && name != "localhost"
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
    valid.then(|| name.to_string())
}

/// The URLs to show for a server listening on `listen`: every LAN address when it
/// listens on all of them, then `<hostname>.local`; just its own address otherwise.
pub fn urls(listen: SocketAddr, lan: &[Ipv4Addr], hostname: Option<&str>) -> Vec<String> {
    let port = listen.port();
    let url = |host: &str| format!("http://{host}:{port}/");
    if !listen.ip().is_unspecified() {
        return vec![url(&match listen.ip() {
            IpAddr::V6(ip) => format!("[{ip}]"),
            IpAddr::V4(ip) => ip.to_string(),
        })];
    }
    let mut urls: Vec<String> = lan.iter().map(|ip| url(&ip.to_string())).collect();
    if let Some(name) = hostname {
        let name = name.strip_suffix(".local").unwrap_or(name);
        urls.push(url(&format!("{name}.local")));
    }
    if urls.is_empty() {
        urls.push(url("127.0.0.1"));
    }
    urls
}

/// Whether a URL is one only this machine can open (no use as a QR code).
pub fn is_loopback_url(url: &str) -> bool {
    url.starts_with("http://127.")
        || url.starts_with("http://[::1]")
        || url.starts_with("http://localhost")
}

/// A QR code of `text` as lines of text: two modules per character cell with the
/// half-block characters, dark on a light quiet zone so phones read it on dark
/// terminals too.
pub fn qr_lines(text: &str) -> Vec<String> {
    use qrcodegen::{QrCode, QrCodeEcc};
    let Ok(qr) = QrCode::encode_text(text, QrCodeEcc::Low) else {
        return Vec::new();
    };
    let quiet = 2;
    let size = qr.size();
    let dark = |x: i32, y: i32| qr.get_module(x, y); // out of range is light
    let mut lines = Vec::new();
    let mut y = -quiet;
    while y < size + quiet {
        let mut line = String::new();
        for x in -quiet..size + quiet {
            line.push(match (dark(x, y), dark(x, y + 1)) {
                (false, false) => '█',
                (true, false) => '▄',
                (false, true) => '▀',
                (true, true) => ' ',
            });
        }
        lines.push(line);
        y += 2;
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lan_addresses_skip_loopback_and_link_local_and_put_private_first() {
        let mut addrs: Vec<Ipv4Addr> = [
            "8.8.4.4",
            "127.0.0.1",
            "169.254.1.1",
            "192.168.1.20",
            "10.0.0.5",
            "10.0.0.5",
        ]
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
        order(&mut addrs);
        let shown: Vec<String> = addrs.iter().map(|a| a.to_string()).collect();
        assert_eq!(shown, ["10.0.0.5", "192.168.1.20", "8.8.4.4"]);
    }

    #[test]
    fn urls_for_all_interfaces_list_each_address_and_the_mdns_name() {
        let lan = ["192.168.1.20".parse().unwrap()];
        let urls = urls("0.0.0.0:3000".parse().unwrap(), &lan, Some("pi"));
        assert_eq!(urls, ["http://192.168.1.20:3000/", "http://pi.local:3000/"]);
    }

    #[test]
    fn urls_for_one_address_show_only_it() {
        let lan = ["192.168.1.20".parse().unwrap()];
        let urls = urls("127.0.0.1:8080".parse().unwrap(), &lan, Some("pi"));
        assert_eq!(urls, ["http://127.0.0.1:8080/"]);
        assert!(is_loopback_url(&urls[0]));
        assert!(!is_loopback_url("http://192.168.1.20:3000/"));
    }

    #[test]
    fn qr_is_square_with_quiet_zone() {
        let lines = qr_lines("http://192.168.1.20:3000/");
        assert!(!lines.is_empty());
        let width = lines[0].chars().count();
        // Version 2 (25 modules) plus a quiet zone of 2 on each side.
        assert_eq!(width, 29);
        assert_eq!(lines.len(), width.div_ceil(2));
        assert!(lines[0].chars().all(|c| c == '█'));
    }
}
