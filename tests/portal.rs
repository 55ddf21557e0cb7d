//! Hotspot mode (`--portal`): each operating system's captive-portal probe, sent
//! with its real `Host` and path, gets a redirect to the chat until the phone chose
//! to continue, and the vendor's "online" answer after; any other site leads to the
//! chat; the chat's own names are served as always. And message times when the
//! server's clock is behind the phones'. 127.0.0.1 and 127.0.0.2 are two phones.

mod common;

use std::net::{IpAddr, SocketAddr};

use common::bin::*;
use common::*;

const ME: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 1));
const OTHER: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 2));

/// Each probe: its host, its path, the status and body its vendor takes for online.
const PROBES: &[(&str, &str, u16, &str)] = &[
    ("connectivitycheck.gstatic.com", "/generate_204", 204, ""),
    ("clients3.google.com", "/generate_204", 204, ""),
    ("www.google.com", "/gen_204", 204, ""),
    ("connectivitycheck.android.com", "/generate_204", 204, ""),
    (
        "captive.apple.com",
        "/hotspot-detect.html",
        200,
        "<HTML><HEAD><TITLE>Success</TITLE></HEAD><BODY>Success</BODY></HTML>",
    ),
    (
        "www.apple.com",
        "/library/test/success.html",
        200,
        "<HTML><HEAD><TITLE>Success</TITLE></HEAD><BODY>Success</BODY></HTML>",
    ),
    ("www.msftconnecttest.com", "/connecttest.txt", 200, "Microsoft Connect Test"),
    ("www.msftncsi.com", "/ncsi.txt", 200, "Microsoft NCSI"),
    ("detectportal.firefox.com", "/success.txt", 200, "success\n"),
    (
        "detectportal.firefox.com",
        "/canonical.html",
        200,
        "<meta http-equiv=\"refresh\" content=\"0;url=https://support.mozilla.org/kb/captive-portal\"/>",
    ),
    (
        "nmcheck.gnome.org",
        "/check_network_status.txt",
        200,
        "NetworkManager is online\n",
    ),
    ("connectivity-check.ubuntu.com", "/", 204, ""),
];

fn portal() -> TestServer {
    TestServer::with(|c| c.portal = true)
}

fn get_at(from: IpAddr, addr: SocketAddr, host: &str, path: &str) -> Response {
    let head =
        format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: CaptiveNetworkSupport\r\n\r\n");
    let mut stream = connect_from(from, addr);
    std::io::Write::write_all(&mut stream, head.as_bytes()).unwrap();
    read_response(&mut std::io::BufReader::new(stream)).unwrap()
}

fn continue_from(from: IpAddr, addr: SocketAddr) -> Response {
    request_from(
        from,
        addr,
        "POST",
        "/portal",
        &[
            "Accept: application/json",
            &format!("Origin: http://{addr}"),
        ],
        b"",
    )
}

#[test]
fn every_probe_leads_to_the_chat_until_the_phone_continues_then_gets_its_online_answer() {
    let server = portal();
    let chat = format!("http://{}/", server.addr);
    for (host, path, _, _) in PROBES {
        let res = get_at(OTHER, server.addr, host, path);
        assert_eq!(res.status, 302, "{host}{path}");
        assert_eq!(
            res.header("location"),
            Some(format!("{chat}?portal").as_str())
        );
        assert_eq!(res.header("cache-control"), Some("no-store"));
    }
    assert_eq!(continue_from(OTHER, server.addr).status, 204);
    for (host, path, status, body) in PROBES {
        let res = get_at(OTHER, server.addr, host, path);
        assert_eq!(res.status, *status, "{host}{path}");
        assert_eq!(res.text(), *body, "{host}{path}");
    }
    // Another phone has not continued: still the chat for it.
    let res = get_at(ME, server.addr, "captive.apple.com", "/hotspot-detect.html");
    assert_eq!(res.status, 302);
}

#[test]
fn any_other_site_and_any_deep_path_lead_to_the_chat_and_its_own_names_are_the_chat() {
    let server = portal();
    let chat = format!("http://{}/", server.addr);
    for (host, path) in [
        ("example.com", "/"),
        ("news.example.org:80", "/world/2026/story.html?x=1"),
        ("detectportal.firefox.com", "/other"),
        ("www.msftconnecttest.com", "/redirect"),
    ] {
        let res = get_at(ME, server.addr, host, path);
        assert_eq!(res.status, 302, "{host}{path}");
        assert_eq!(
            res.header("location"),
            Some(format!("{chat}?portal").as_str())
        );
    }
    continue_from(ME, server.addr);
    let res = get_at(ME, server.addr, "example.com", "/deep/page");
    assert_eq!(
        res.header("location"),
        Some(chat.as_str()),
        "let in: the chat itself"
    );
    // The chat at its address and at localhost: the page, the stream, posting.
    for host in [
        server.addr.to_string(),
        format!("localhost:{}", server.addr.port()),
    ] {
        let page = get_at(ME, server.addr, &host, "/");
        assert_eq!(page.status, 200, "{host}");
        assert!(page.text().contains("<form"));
        assert_eq!(get_at(ME, server.addr, &host, "/generate_204").status, 404);
    }
    say(server.addr, "still a chat");
}

#[test]
fn continuing_is_a_post_from_the_chats_own_page() {
    let server = portal();
    let res = request(server.addr, "GET", "/portal", &[], b"");
    assert_eq!((res.status, res.header("allow")), (405, Some("POST")));
    let res = request(
        server.addr,
        "POST",
        "/portal",
        &["Origin: http://evil.example"],
        b"",
    );
    assert_eq!(res.status, 403);
    // The form without JavaScript goes back to the chat.
    let res = request(server.addr, "POST", "/portal", &[], b"");
    assert_eq!((res.status, res.header("location")), (303, Some("/")));
}

#[test]
fn without_portal_mode_other_hosts_get_the_chats_usual_answers() {
    let server = TestServer::start();
    let res = get_at(ME, server.addr, "captive.apple.com", "/hotspot-detect.html");
    assert_eq!(res.status, 404);
    let res = get_at(ME, server.addr, "example.com", "/");
    assert_eq!(res.status, 200);
    assert_eq!(
        get_at(ME, server.addr, "example.com", "/portal").status,
        404
    );
}

fn post_sent(from: IpAddr, addr: SocketAddr, text: &str, sent: u64) -> serde_json::Value {
    let body = format!("message={}&sent={sent}", encode(text));
    let res = request_from(
        from,
        addr,
        "POST",
        "/message",
        &[
            "Content-Type: application/x-www-form-urlencoded",
            "Accept: application/json",
        ],
        body.as_bytes(),
    );
    assert_eq!(res.status, 201, "{}", res.text());
    json(&res.body)
}

#[test]
fn when_the_phones_agree_the_server_is_behind_message_times_follow_them_and_the_log_says_so_once() {
    let running = Running::start(&["--listen", "127.0.0.1:0", "--post-rate", "off"]);
    let addr = running.addr;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    const HOURS_3: u64 = 3 * 3600 * 1000;
    // One phone alone does not move a clock that reads a plausible time.
    let first = post_sent(ME, addr, "one", now + HOURS_3);
    assert!(first["time"].as_u64().unwrap() < now + 60_000, "{first}");
    // Two agree: times follow them, and never go back.
    let mut last = 0;
    for (i, from) in [OTHER, ME, OTHER, ME].into_iter().enumerate() {
        let m = post_sent(from, addr, &format!("m{i}"), now + HOURS_3 + 1000);
        let time = m["time"].as_u64().unwrap();
        assert!(time > now + HOURS_3 - 60_000, "{m}");
        assert!(time >= last);
        last = time;
    }
    let (out, lines) = running.terminate();
    assert!(out.status.success());
    let said: Vec<&String> = lines
        .iter()
        .filter(|l| l.contains("behind the phones"))
        .collect();
    assert_eq!(said.len(), 1, "{lines:?}");
    assert!(said[0].contains("3 h 0 min"), "{}", said[0]);
}

#[test]
fn wrong_clocks_cannot_date_everyone_s_messages_and_honest_phones_undo_them() {
    let server = TestServer::start();
    let addr = server.addr;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let near_now = |m: &serde_json::Value| {
        let time = m["time"].as_u64().unwrap();
        assert!(time.abs_diff(now) < 10 * 60_000, "{m}");
    };
    let from = |n: u8| IpAddr::from([127, 0, 0, n]);
    // Two addresses claim the year 2499: no clock reads that.
    const Y2499: u64 = 16_725_139_200_000;
    post_sent(from(3), addr, "a", Y2499);
    post_sent(from(4), addr, "b", Y2499);
    near_now(&post_sent(from(5), addr, "honest", now));
    // Two claim a year ahead, and are all the phones there are: times follow them.
    let year = 366 * 24 * 3600 * 1000;
    let mut server = TestServer::start();
    let addr = server.addr;
    post_sent(from(3), addr, "a", now + year);
    let ahead = post_sent(from(4), addr, "b", now + year);
    assert!(ahead["time"].as_u64().unwrap() > now + year / 2, "{ahead}");
    // Three honest phones post: the correction is undone, not kept.
    for n in 5..8 {
        post_sent(from(n), addr, "honest", now);
    }
    near_now(&post_sent(from(5), addr, "after", now));
    server.stop();
}

/// Runs `scripts/hotspot` with `args`; its exit code, output and errors.
fn hotspot(args: &[&str]) -> (i32, String, String) {
    let out = std::process::Command::new("bash")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/hotspot"))
        .args(args)
        .output()
        .expect("bash");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn the_hotspot_script_prints_every_step_and_its_undo_takes_each_back() {
    let (code, out, _) = hotspot(&[
        "--dry-run",
        "--name",
        "Camp Site",
        "--password",
        "tent-pegs",
    ]);
    assert_eq!(code, 0, "{out}");
    let commands: Vec<&str> = out.lines().filter(|l| l.starts_with("+ ")).collect();
    let has = |words: &[&str]| commands.iter().any(|c| words.iter().all(|w| c.contains(w)));
    assert!(
        has(&[
            "nmcli connection add",
            "ssid Camp\\ Site",
            "802-11-wireless.mode ap"
        ]),
        "{out}"
    );
    assert!(
        has(&["ipv4.method shared", "ipv4.addresses 10.42.0.1/24"]),
        "{out}"
    );
    assert!(
        has(&["wifi-sec.key-mgmt wpa-psk", "wifi-sec.psk tent-pegs"]),
        "{out}"
    );
    assert!(
        has(&["write /etc/NetworkManager/dnsmasq-shared.d/lanchat.conf"]),
        "{out}"
    );
    assert!(
        out.contains("address=/#/10.42.0.1"),
        "every name is the Pi: {out}"
    );
    assert!(
        has(&["write /etc/systemd/system/lanchat.service.d/hotspot.conf"]),
        "{out}"
    );
    assert!(out.contains("Environment=LANCHAT_PORTAL=true"), "{out}");
    assert!(has(&["nmcli connection up lanchat-hotspot"]), "{out}");
    assert!(has(&["systemctl restart lanchat"]), "{out}");

    let (code, open, _) = hotspot(&["--dry-run", "--address", "192.168.50.1"]);
    assert_eq!(code, 0);
    assert!(
        !open.contains("wifi-sec"),
        "no password: an open Wi-Fi: {open}"
    );
    assert!(open.contains("address=/#/192.168.50.1"), "{open}");

    let (code, undo, _) = hotspot(&["--undo", "--dry-run"]);
    assert_eq!(code, 0);
    for step in [
        "nmcli connection delete lanchat-hotspot",
        "rm -f /etc/NetworkManager/dnsmasq-shared.d/lanchat.conf /etc/systemd/system/lanchat.service.d/hotspot.conf",
        "systemctl restart lanchat",
    ] {
        assert!(undo.contains(step), "{step}: {undo}");
    }

    for bad in [
        &["--dry-run", "--password", "short"][..],
        &["--dry-run", "--address", "pi.local"],
        &["--dry-run", "--name", ""],
        &["--bogus"],
    ] {
        let (code, out, err) = hotspot(bad);
        assert_eq!(code, 2, "{bad:?}: {out}");
        assert_eq!(
            err.lines().count(),
            1,
            "one line that says what to fix: {err}"
        );
        assert!(!out.contains("+ "), "nothing done: {out}");
    }
}
