//! Hotspot mode (`--portal`): when the Pi is the Wi-Fi and answers every DNS name
//! with its own address, every request for another site reaches this server. This
//! module tells those requests from the chat's own, and answers them: the operating
//! systems' captive-portal probes, so that a phone that joins shows the chat by
//! itself, and anything else with a redirect to the chat.
//!
//! A phone goes through two states, kept per client address by the registry:
//! - **Not yet let in**: every probe and every other foreign request is redirected
//!   (`302`) to `http://<this server>/?portal`. The phone takes the network for a
//!   captive portal and opens the chat in its sign-in sheet; the page there offers
//!   **Continue**, which lets the address in (`POST /portal`).
//! - **Let in**: probes get the answer each vendor documents as "online", so the
//!   sheet shows Done (iOS) or closes (Android), the phone keeps the network and
//!   sends its traffic through it; other foreign requests still go to the chat, so
//!   any `http://` address a person types opens it.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use http_types::headers::{CACHE_CONTROL, CONTENT_TYPE, HOST, LOCATION};
use http_types::{Request, Response, StatusCode};

/// A connectivity probe and what its vendor takes for "online".
struct Probe {
    /// The host the probe goes to, or `None` for a path that is the probe on any
    /// host (each vendor has several).
    host: Option<&'static str>,
    path: &'static str,
    status: StatusCode,
    body: &'static str,
    content_type: &'static str,
}

const HTML: &str = "text/html";
const TEXT: &str = "text/plain";

/// The probes of the systems phones and laptops run, with their "online" answers.
const PROBES: &[Probe] = &[
    // Android (connectivitycheck.gstatic.com, www.google.com, clients3.google.com,
    // connectivitycheck.android.com, play.googleapis.com): 204 and no body.
    Probe {
        host: None,
        path: "/generate_204",
        status: StatusCode::NoContent,
        body: "",
        content_type: TEXT,
    },
    Probe {
        host: None,
        path: "/gen_204",
        status: StatusCode::NoContent,
        body: "",
        content_type: TEXT,
    },
    // Apple iOS and macOS (captive.apple.com and www.apple.com): this page exactly.
    Probe {
        host: None,
        path: "/hotspot-detect.html",
        status: StatusCode::Ok,
        body: APPLE_SUCCESS,
        content_type: HTML,
    },
    Probe {
        host: None,
        path: "/library/test/success.html",
        status: StatusCode::Ok,
        body: APPLE_SUCCESS,
        content_type: HTML,
    },
    // Windows (www.msftconnecttest.com, and www.msftncsi.com before Windows 10).
    Probe {
        host: None,
        path: "/connecttest.txt",
        status: StatusCode::Ok,
        body: "Microsoft Connect Test",
        content_type: TEXT,
    },
    Probe {
        host: None,
        path: "/ncsi.txt",
        status: StatusCode::Ok,
        body: "Microsoft NCSI",
        content_type: TEXT,
    },
    // Firefox, on any system.
    Probe {
        host: Some("detectportal.firefox.com"),
        path: "/canonical.html",
        status: StatusCode::Ok,
        body: "<meta http-equiv=\"refresh\" content=\"0;url=https://support.mozilla.org/kb/captive-portal\"/>",
        content_type: HTML,
    },
    Probe {
        host: Some("detectportal.firefox.com"),
        path: "/success.txt",
        status: StatusCode::Ok,
        body: "success\n",
        content_type: TEXT,
    },
    // NetworkManager, as GNOME, Arch, Fedora and Ubuntu configure it.
    Probe {
        host: Some("nmcheck.gnome.org"),
        path: "/check_network_status.txt",
        status: StatusCode::Ok,
        body: "NetworkManager is online\n",
        content_type: TEXT,
    },
    Probe {
        host: Some("ping.archlinux.org"),
        path: "/nm-check.txt",
        status: StatusCode::Ok,
        body: "NetworkManager is online\n",
        content_type: TEXT,
    },
    Probe {
        host: Some("fedoraproject.org"),
        path: "/static/hotspot.txt",
        status: StatusCode::Ok,
        body: "OK",
        content_type: TEXT,
    },
    Probe {
        host: Some("connectivity-check.ubuntu.com"),
        path: "/",
        status: StatusCode::NoContent,
        body: "",
        content_type: TEXT,
    },
];

const APPLE_SUCCESS: &str = "<HTML><HEAD><TITLE>Success</TITLE></HEAD><BODY>Success</BODY></HTML>";

/// The query the chat is opened with from a redirect, so that the page knows it may
/// be in a sign-in sheet and offers to continue.
pub const FROM_PORTAL: &str = "portal";

/// How long a hotspot's client stays let in: a day, longer than any party.
pub const LET_IN_FOR: Duration = Duration::from_secs(24 * 3600);

/// Hotspot clients let in at most: an access point serves far fewer.
pub const LET_IN_MAX: usize = 4096;

/// The hotspot's clients that chose Continue, with when, by address (the hotspot's
/// own network: one phone, one address). It orders no message, so it lives here,
/// behind a lock never held across an await, not in the registry.
#[derive(Debug, Default)]
pub struct LetIn(Mutex<HashMap<IpAddr, Instant>>);

impl LetIn {
    /// Lets `client` in at `now`. Full: the one let in longest ago sees the sign-in
    /// sheet again.
    pub fn admit(&self, client: IpAddr, now: Instant) {
        let mut table = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if table.len() >= LET_IN_MAX && !table.contains_key(&client) {
            table.retain(|_, since| now.duration_since(*since) < LET_IN_FOR);
            if table.len() >= LET_IN_MAX {
                let oldest = table.iter().min_by_key(|(_, t)| **t).map(|(ip, _)| *ip);
                if let Some(ip) = oldest {
                    table.remove(&ip);
                }
            }
        }
        table.insert(client, now);
    }

    /// Whether `client` is let in at `now`.
    pub fn is_in(&self, client: IpAddr, now: Instant) -> bool {
        let table = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        table
            .get(&client)
            .is_some_and(|since| now.duration_since(*since) < LET_IN_FOR)
    }
}

/// The host name of a `Host` header: lower case, without the port or a final dot.
pub fn host_name(host: &str) -> String {
    let host = host.trim();
    let name = if let Some(v6) = host.strip_prefix('[') {
        v6.split(']').next().unwrap_or("")
    } else {
        host.rsplit_once(':').map_or(host, |(name, port)| {
            if port.bytes().all(|b| b.is_ascii_digit()) {
                name
            } else {
                host
            }
        })
    };
    name.trim_end_matches('.').to_ascii_lowercase()
}

/// Whether `host` names this server: an address (a request that reached it by
/// address was routed here), `localhost`, or the machine's name, with or without
/// `.local`. Anything else reached it only because the hotspot's DNS answers every
/// name with this machine.
pub fn is_own(host: &str, hostname: Option<&str>) -> bool {
    let name = host_name(host);
    if name.is_empty() || name.parse::<IpAddr>().is_ok() || name == "localhost" {
        return true;
    }
    hostname.is_some_and(|own| {
        let own = own.to_ascii_lowercase();
        let own = own.strip_suffix(".local").unwrap_or(&own);
        name == own || name.strip_suffix(".local") == Some(own)
    })
}

/// The answer to a request for another site: a probe's "online" answer for an
/// address that was let in, a redirect to the chat otherwise.
pub fn answer(req: &Request, local: SocketAddr, let_in: bool) -> Response {
    let host = req
        .header(HOST)
        .map_or(String::new(), |h| host_name(h.as_str()));
    let path = req.url().path();
    let probe = PROBES
        .iter()
        .find(|p| p.path == path && p.host.map_or(true, |h| h == host));
    match probe {
        Some(probe) if let_in => {
            let mut res = Response::new(probe.status);
            res.insert_header(CACHE_CONTROL, "no-store");
            if !probe.body.is_empty() {
                res.insert_header(CONTENT_TYPE, probe.content_type);
                res.set_body(probe.body);
            }
            res
        }
        _ => redirect(local, !let_in),
    }
}

/// A `302` to the chat at the address the request came in on.
fn redirect(local: SocketAddr, from_portal: bool) -> Response {
    let host = match local.ip() {
        IpAddr::V4(ip) => ip.to_string(),
        IpAddr::V6(ip) => format!("[{ip}]"),
    };
    let port = match local.port() {
        80 => String::new(),
        port => format!(":{port}"),
    };
    let query = if from_portal {
        format!("?{FROM_PORTAL}")
    } else {
        String::new()
    };
    let mut res = Response::new(StatusCode::Found);
    res.insert_header(LOCATION, format!("http://{host}{port}/{query}"));
    // A probe's answer must never be cached: the next one must reach the server.
    res.insert_header(CACHE_CONTROL, "no-store");
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_let_in_stays_in_for_a_day_and_the_oldest_goes_when_full() {
        let table = LetIn::default();
        let now = Instant::now();
        let phone = |n: u32| IpAddr::from(std::net::Ipv4Addr::from(0x0a2a_0000 + n));
        assert!(!table.is_in(phone(1), now));
        table.admit(phone(1), now);
        assert!(table.is_in(phone(1), now + LET_IN_FOR - Duration::from_secs(1)));
        assert!(!table.is_in(phone(1), now + LET_IN_FOR));
        for n in 2..=LET_IN_MAX as u32 + 1 {
            table.admit(phone(n), now + Duration::from_millis(u64::from(n)));
        }
        assert!(!table.is_in(phone(1), now), "the oldest went");
        assert!(table.is_in(phone(2), now + Duration::from_secs(1)));
    }

    #[test]
    fn host_names_lose_their_port_case_and_final_dot() {
        assert_eq!(host_name("Captive.Apple.com."), "captive.apple.com");
        assert_eq!(host_name("10.42.0.1:8080"), "10.42.0.1");
        assert_eq!(host_name("[fe80::1]:80"), "fe80::1");
        assert_eq!(host_name("pi.local"), "pi.local");
    }

    #[test]
    fn own_names_are_addresses_localhost_and_the_machines_name() {
        for own in [
            "10.42.0.1",
            "10.42.0.1:80",
            "[::1]:3000",
            "localhost:3000",
            "",
            "Pi.local",
            "pi",
        ] {
            assert!(is_own(own, Some("pi")), "{own}");
        }
        for foreign in [
            "captive.apple.com",
            "example.com:80",
            "pi.example",
            "raspberrypi",
        ] {
            assert!(!is_own(foreign, Some("pi")), "{foreign}");
        }
        assert!(!is_own("pi.local", None));
    }
}
