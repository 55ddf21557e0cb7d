//! What the page asks of the server beyond posting and streaming: a post sent again
//! after its answer was lost (`cid`), older messages as the page is scrolled up
//! (`/messages`), and a quick check that the server is there (`/ping`).

mod common;

use common::*;

fn post_cid(addr: std::net::SocketAddr, text: &str, cid: &str) -> Response {
    post_json(addr, &format!("message={}&cid={cid}", encode(text)))
}

#[test]
fn a_post_sent_again_with_its_cid_is_one_message_for_everyone() {
    let server = TestServer::start();
    let mut stream = Stream::open(server.addr, None);
    let first = post_cid(server.addr, "only once", "a1b2c3");
    assert_eq!(first.status, 201);
    let first = json(&first.body);
    assert_eq!(first["cid"], "a1b2c3");
    // The answer was lost; the page sends it again, maybe from another tab.
    for _ in 0..3 {
        let again = post_cid(server.addr, "only once", "a1b2c3");
        assert_eq!(again.status, 201);
        assert_eq!(json(&again.body), first);
    }
    let other = json(&post_cid(server.addr, "only once", "d4e5f6").body);
    assert_ne!(other["id"], first["id"], "another cid is another message");
    assert_eq!(stream.next_message().unwrap(), first);
    assert_eq!(stream.next_message().unwrap()["id"], other["id"]);
    let bad = post_cid(server.addr, "x", "not%20one");
    assert_eq!(bad.status, 400);
    assert!(bad.text().contains("cid"), "{}", bad.text());
}

#[test]
fn older_messages_come_in_pages_before_a_given_id() {
    let server = TestServer::start();
    let ids: Vec<String> = (0..7).map(|i| say(server.addr, &format!("m{i}"))).collect();
    let page = get(server.addr, &format!("/messages?before={}&limit=3", ids[5]));
    assert_eq!(page.status, 200);
    assert_eq!(page.header("content-type"), Some("application/json"));
    let body = json(&page.body);
    let got: Vec<&str> = body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["text"].as_str().unwrap())
        .collect();
    assert_eq!(got, ["m2", "m3", "m4"]);
    assert_eq!(body["more"], true);
    let body = json(&get(server.addr, &format!("/messages?before={}", ids[2])).body);
    assert_eq!(body["messages"].as_array().unwrap().len(), 2);
    assert_eq!(body["more"], false);
    let body = json(&get(server.addr, "/messages?limit=1").body);
    assert_eq!(body["messages"][0]["text"], "m6", "no before: the newest");
    for bad in [
        "/messages?before=nope",
        "/messages?limit=0",
        "/messages?limit=201",
    ] {
        assert_eq!(get(server.addr, bad).status, 400, "{bad}");
    }
    let unknown = json(&get(server.addr, "/messages?before=1-1").body);
    assert_eq!(unknown["messages"].as_array().unwrap().len(), 0);
}

#[test]
fn older_messages_need_the_key_and_ping_does_not() {
    let server = TestServer::with(|c| c.key = Some("k".into()));
    assert_eq!(get(server.addr, "/messages").status, 401);
    assert_eq!(get(server.addr, "/messages?key=k").status, 200);
    let ping = get(server.addr, "/ping");
    assert_eq!(
        (ping.status, ping.header("cache-control")),
        (204, Some("no-store"))
    );
}

#[test]
fn a_device_tag_comes_from_the_secret_only_its_browser_holds() {
    let server = TestServer::start();
    let post = |device: &str| {
        let res = post_json(server.addr, &format!("name=Ana&message=hi&device={device}"));
        assert_eq!(res.status, 201, "{}", res.text());
        json(&res.body)
    };
    let ana = post("0123456789abcdef0123456789abcdef");
    let tag = ana["device"].as_str().expect("a tag").to_string();
    assert_eq!(tag.len(), 12);
    assert!(
        !ana.to_string().contains("0123456789abcdef0123"),
        "the secret goes nowhere"
    );
    assert_eq!(
        post("0123456789abcdef0123456789abcdef")["device"],
        tag.as_str()
    );
    // Another browser named Ana, and one that posts Ana's tag as its secret: neither
    // gets her tag.
    let other = post("fedcba9876543210fedcba9876543210");
    assert_ne!(other["device"], tag.as_str());
    let forger = post(&format!("{tag}{tag}"));
    assert_ne!(forger["device"], tag.as_str());
    let bad = post_json(server.addr, "message=hi&device=short");
    assert_eq!(bad.status, 400);
    // A form without one (no JavaScript) has no tag.
    assert!(json(&post_json(server.addr, "message=plain").body)
        .get("device")
        .is_none());
}
