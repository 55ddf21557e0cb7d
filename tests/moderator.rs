//! The moderator (`--mod-key`): how a browser becomes one, deleting a message for
//! everyone (live, in replays, for new pages, on disk across a restart), muting a
//! sender by one of their messages, and the mark on the host's own posts. Two
//! loopback addresses, 127.0.0.1 and 127.0.0.2, are two clients.

mod common;

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use common::*;

const MOD_KEY: &str = "host-only";
const ME: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 1));
const OTHER: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 2));
const FORM: &str = "Content-Type: application/x-www-form-urlencoded";
const JSON: &str = "Accept: application/json";

/// The `Cookie` header of a browser that opened the moderator link: the token the
/// server gave it, beside a cookie of another app.
fn mod_cookie(addr: SocketAddr) -> String {
    let res = get(addr, &format!("/?mod={MOD_KEY}"));
    let token = res
        .headers
        .iter()
        .find_map(|(n, v)| {
            let v = v.strip_prefix("lanchat_mod=")?;
            n.eq_ignore_ascii_case("set-cookie")
                .then(|| v.split(';').next().unwrap())
        })
        .expect("the moderator cookie")
        .to_string();
    format!("Cookie: theme=caf; lanchat_mod={token}")
}

fn moderated() -> TestServer {
    TestServer::with(|c| c.mod_key = Some(MOD_KEY.into()))
}

fn post_from(from: IpAddr, addr: SocketAddr, text: &str, extra: &[&str]) -> Response {
    let body = format!("name=Ada&message={}", encode(text));
    let mut headers = vec![FORM, JSON];
    headers.extend_from_slice(extra);
    request_from(from, addr, "POST", "/message", &headers, body.as_bytes())
}

fn delete(addr: SocketAddr, path: &str, extra: &[&str]) -> Response {
    request(addr, "DELETE", path, extra, b"")
}

fn mute(addr: SocketAddr, id: &str, body: &str) -> Response {
    request(
        addr,
        "POST",
        &format!("/message/{id}/mute"),
        &[FORM, &mod_cookie(addr)],
        body.as_bytes(),
    )
}

#[test]
fn the_moderator_link_leaves_a_key_cookie_scripts_cannot_read_and_a_mark_they_can() {
    let server = moderated();
    let res = get(server.addr, "/?mod=host-only");
    assert_eq!(res.status, 303, "{}", res.text());
    assert_eq!(res.header("location"), Some("/"));
    let cookies: Vec<&str> = res
        .headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("set-cookie"))
        .map(|(_, v)| v.as_str())
        .collect();
    assert_eq!(cookies.len(), 2, "{cookies:?}");
    // A token derived from the key, not the key.
    let token = cookies[0]
        .strip_prefix("lanchat_mod=")
        .unwrap()
        .split(';')
        .next()
        .unwrap();
    assert!(
        token.len() == 32 && !token.contains(MOD_KEY),
        "{}",
        cookies[0]
    );
    assert!(cookies[0].contains("HttpOnly"));
    assert!(cookies[1].starts_with("lanchat_moderator=1;") && !cookies[1].contains("HttpOnly"));
    for cookie in &cookies {
        assert!(cookie.contains("SameSite=Strict"), "{cookie}");
    }
    let wrong = get(server.addr, "/?mod=guess");
    assert_eq!(wrong.status, 403);
    assert!(
        wrong.text().contains("not the moderator key"),
        "{}",
        wrong.text()
    );
    assert!(
        wrong.header("set-cookie").is_none(),
        "a wrong key is not remembered"
    );

    let plain = TestServer::start();
    let none = get(plain.addr, "/?mod=anything");
    assert_eq!(none.status, 403);
    assert!(none.text().contains("--mod-key"), "{}", none.text());
}

#[test]
fn with_an_access_key_the_moderator_link_remembers_both() {
    let server = TestServer::with(|c| {
        c.key = Some("family".into());
        c.mod_key = Some(MOD_KEY.into());
    });
    let res = get(server.addr, "/?key=family&mod=host-only");
    assert_eq!(res.status, 303);
    let cookies = res
        .headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("set-cookie"))
        .count();
    assert_eq!(cookies, 3);
    // The moderator key alone does not open a chat that needs its key.
    assert_eq!(get(server.addr, "/?mod=host-only").status, 401);
}

#[test]
fn a_deletion_reaches_every_page_at_once_in_the_id_sequence_and_only_the_host_can_make_one() {
    let server = moderated();
    let mut stream = Stream::open(server.addr, None);
    stream.wait_online(1);
    let first = say(server.addr, "hello");
    let bad = say(server.addr, "something to take back");
    let after = say(server.addr, "after");

    // Not the host: 403, and nothing happens.
    for extra in [
        &[][..],
        &["Cookie: lanchat_mod=guess"],
        &["Cookie: lanchat_moderator=1"],
    ] {
        let res = delete(server.addr, &format!("/message/{bad}"), extra);
        assert_eq!(res.status, 403, "{extra:?}");
        assert!(res.text().contains("only the host"), "{}", res.text());
    }
    let res = delete(server.addr, &format!("/message/{bad}?mod=guess"), &[]);
    assert_eq!(res.status, 403);

    let res = delete(
        server.addr,
        &format!("/message/{bad}"),
        &[&mod_cookie(server.addr)],
    );
    assert_eq!(res.status, 204, "{}", res.text());
    for id in [&first, &bad, &after] {
        assert_eq!(&stream.next_message().unwrap()["id"], id.as_str());
    }
    let deletion = stream.next().unwrap();
    assert_eq!(deletion.event, "delete");
    assert_eq!(json(deletion.data.as_bytes())["id"], bad.as_str());
    let (epoch, n) = after.rsplit_once('-').unwrap();
    let next = format!("{epoch}-{}", n.parse::<u64>().unwrap() + 1);
    assert_eq!(deletion.id, next, "the next id of the sequence");
    // The next message goes on after it.
    let later = say(server.addr, "later");
    let (_, m) = later.rsplit_once('-').unwrap();
    assert_eq!(m.parse::<u64>().unwrap(), n.parse::<u64>().unwrap() + 2);

    // Once is all: a second deletion, an unknown or malformed id are 404.
    for path in [
        format!("/message/{bad}"),
        "/message/1-999".to_string(),
        "/message/nope".to_string(),
    ] {
        let res = delete(server.addr, &path, &[&mod_cookie(server.addr)]);
        assert_eq!(res.status, 404, "{path}");
        assert!(res.text().contains("no such message"), "{}", res.text());
    }
    // Scripts give the key in the query.
    let res = delete(server.addr, &format!("/message/{later}?mod={MOD_KEY}"), &[]);
    assert_eq!(res.status, 204);
    // Wrong methods, and a post from another site even with the cookie.
    let res = request(server.addr, "GET", &format!("/message/{first}"), &[], b"");
    assert_eq!((res.status, res.header("allow")), (405, Some("DELETE")));
    let res = delete(
        server.addr,
        &format!("/message/{first}"),
        &[&mod_cookie(server.addr), "Origin: http://elsewhere.example"],
    );
    assert_eq!(res.status, 403);
}

#[test]
fn a_deleted_message_is_never_sent_again_and_pages_that_had_it_are_told() {
    let server = moderated();
    let first = say(server.addr, "first");
    let bad = say(server.addr, "deleted text");
    say(server.addr, "third");
    assert_eq!(
        delete(
            server.addr,
            &format!("/message/{bad}"),
            &[&mod_cookie(server.addr)]
        )
        .status,
        204
    );
    // A page that saw `first` and was away: it gets the deletion, not the message.
    let mut back = Stream::open(server.addr, Some(&first));
    assert_eq!(back.next_message().unwrap()["text"], "third");
    let deletion = back.next().unwrap();
    assert_eq!(
        (
            deletion.event.as_str(),
            json(deletion.data.as_bytes())["id"].as_str()
        ),
        ("delete", Some(bad.as_str()))
    );
    // A new page never sees it.
    let mut new = Stream::open(server.addr, None);
    let texts: Vec<String> = (0..2)
        .map(|_| {
            new.next_message().unwrap()["text"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(texts, ["first", "third"]);
    // Nor does the page for readers without JavaScript.
    let recent = get(server.addr, "/recent").text();
    assert!(
        recent.contains("third") && !recent.contains("deleted text"),
        "{recent}"
    );
}

#[test]
fn a_deletion_is_gone_from_disk_and_stays_gone_after_a_restart() {
    let dir = std::env::temp_dir().join(format!("lanchat-moderator-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let with_dir = |dir: PathBuf| {
        move |c: &mut lanchat::config::Config| {
            c.mod_key = Some(MOD_KEY.into());
            c.data_dir = Some(dir);
        }
    };
    let mut server = TestServer::with(with_dir(dir.clone()));
    let first = say(server.addr, "kept");
    let bad = say(server.addr, "my phone number is 0123");
    assert_eq!(
        delete(
            server.addr,
            &format!("/message/{bad}"),
            &[&mod_cookie(server.addr)]
        )
        .status,
        204
    );
    let file = std::fs::read_to_string(dir.join("history.jsonl")).unwrap();
    assert!(
        !file.contains("0123"),
        "gone from disk once answered: {file}"
    );
    server.stop();

    let server = TestServer::with(with_dir(dir.clone()));
    let mut new = Stream::open(server.addr, None);
    assert_eq!(new.next_message().unwrap()["text"], "kept");
    let mut back = Stream::open(server.addr, Some(&first));
    let deletion = back.next().unwrap();
    assert_eq!(deletion.event, "delete", "a page that had it is still told");
    assert_eq!(json(deletion.data.as_bytes())["id"], bad.as_str());
    // The ids go on after the deletion's.
    let next = say(server.addr, "after the restart");
    assert_eq!(
        next.rsplit_once('-').unwrap().1.parse::<u64>().unwrap(),
        deletion
            .id
            .rsplit_once('-')
            .unwrap()
            .1
            .parse::<u64>()
            .unwrap()
            + 1
    );
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_muted_sender_gets_403_with_the_time_left_and_everyone_else_posts() {
    let server = moderated();
    let spam = post_from(OTHER, server.addr, "spam", &[]);
    assert_eq!(spam.status, 201);
    let id = json(&spam.body)["id"].as_str().unwrap().to_string();

    let res = request(
        server.addr,
        "POST",
        &format!("/message/{id}/mute"),
        &[FORM],
        b"",
    );
    assert_eq!(res.status, 403, "only the host mutes");
    assert_eq!(mute(server.addr, &id, "minutes=abc").status, 400);
    assert_eq!(mute(server.addr, &id, "minutes=99999").status, 400);
    assert_eq!(mute(server.addr, "9-9", "").status, 404);
    assert_eq!(
        mute(server.addr, &id, "").status,
        204,
        "ten minutes by default"
    );

    let muted = post_from(OTHER, server.addr, "more spam", &[]);
    assert_eq!(muted.status, 403);
    assert!(
        muted.text().contains("muted for 10 minutes"),
        "{}",
        muted.text()
    );
    assert_eq!(post_from(ME, server.addr, "hi", &[]).status, 201);
    // The host is never muted, whatever the address.
    assert_eq!(
        post_from(OTHER, server.addr, "host", &[&mod_cookie(server.addr)]).status,
        201
    );

    assert_eq!(mute(server.addr, &id, "minutes=2").status, 204);
    let muted = post_from(OTHER, server.addr, "again", &[]);
    assert!(
        muted.text().contains("muted for 2 minutes"),
        "{}",
        muted.text()
    );
    assert_eq!(mute(server.addr, &id, "minutes=0").status, 204, "lifted");
    assert_eq!(post_from(OTHER, server.addr, "sorry", &[]).status, 201);

    // Nobody is ever shown an address.
    let mut stream = Stream::open(server.addr, None);
    while let Some(m) = stream.next_message() {
        assert!(!m.to_string().contains("127.0.0"), "{m}");
        if m["text"] == "sorry" {
            break;
        }
    }
}

#[test]
fn the_hosts_posts_carry_the_mark_and_no_one_else_can_give_it_to_theirs() {
    let server = moderated();
    let host = post_from(ME, server.addr, "welcome", &[&mod_cookie(server.addr)]);
    assert_eq!(json(&host.body)["mod"], true);
    let by_query = request(
        server.addr,
        "POST",
        &format!("/message?mod={MOD_KEY}"),
        &[FORM, JSON],
        b"message=from+a+script",
    );
    assert_eq!(json(&by_query.body)["mod"], true);
    for extra in [
        &[][..],
        &["Cookie: lanchat_moderator=1"],
        &["Cookie: lanchat_mod=guess"],
    ] {
        let guest = request(
            server.addr,
            "POST",
            "/message",
            &[&[FORM, JSON][..], extra].concat(),
            b"name=host&message=I+am+the+host&mod=true",
        );
        assert_eq!(guest.status, 201);
        assert!(json(&guest.body).get("mod").is_none(), "{extra:?}");
    }
    let mut stream = Stream::open(server.addr, None);
    assert_eq!(stream.next_message().unwrap()["mod"], true);
}

#[test]
fn wrong_keys_from_one_device_are_slowed_and_the_right_key_still_opens_on_another() {
    let server = moderated();
    let guess = |from: IpAddr, key: &str| {
        request_from(from, server.addr, "GET", &format!("/?mod={key}"), &[], b"")
    };
    for i in 0..5 {
        assert_eq!(guess(OTHER, &format!("guess-{i}")).status, 403);
    }
    // The sixth within the minute is not even checked: the right key too gets 429.
    for key in ["guess-5", MOD_KEY] {
        let slowed = guess(OTHER, key);
        assert_eq!(slowed.status, 429, "{}", slowed.text());
        let wait: u64 = slowed.header("retry-after").unwrap().parse().unwrap();
        assert!((50..=61).contains(&wait), "{wait}");
    }
    // Another device opens the link as ever.
    assert_eq!(guess(ME, MOD_KEY).status, 303);
    // The key itself is no cookie: only the token the link gave is.
    let res = request(
        server.addr,
        "DELETE",
        &format!("/message/{}", say(server.addr, "x")),
        &[&format!("Cookie: lanchat_mod={MOD_KEY}")],
        b"",
    );
    assert_eq!(res.status, 403);
}
