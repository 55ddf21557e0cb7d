//! Reply, react, take back, find, over real sockets: each change a record of the one
//! id sequence, sent once to every stream and again exactly once after
//! `Last-Event-ID`; every refusal a code a program can read.

mod common;

use common::*;

const ANA: &str = "ana-device-secret-0001";
const BO: &str = "bo-device-secret-00002";

/// Posts `fields` to `path` as a page does; the answer.
fn form(addr: std::net::SocketAddr, path: &str, fields: &str) -> Response {
    request(addr, "POST", path, FORM_FOR_JSON, fields.as_bytes())
}

fn post_from(
    addr: std::net::SocketAddr,
    device: &str,
    text: &str,
    extra: &str,
) -> serde_json::Value {
    let res = post_json(
        addr,
        &format!("name=n&message={}&device={device}{extra}", encode(text)),
    );
    assert_eq!(res.status, 201, "{}", res.text());
    json(&res.body)
}

fn code(res: &Response) -> (u16, String) {
    let body = json(&res.body);
    (
        res.status,
        body["error"].as_str().unwrap_or_default().to_string(),
    )
}

#[test]
fn reactions_edits_and_deletions_reach_every_stream_once_and_replay_once() {
    let server = TestServer::start();
    let addr = server.addr;
    let mut stream = Stream::open(addr, None);
    let m = post_from(addr, ANA, "Pizza at 7?", "");
    let id = m["id"].as_str().unwrap().to_string();
    assert_eq!(stream.next_message().unwrap()["id"], id.as_str());
    let thumbs = encode("\u{1f44d}");
    let react = |device: &str, on: &str| {
        form(
            addr,
            &format!("/message/{id}/react"),
            &format!("emoji={thumbs}&on={on}&name=Bo&device={device}"),
        )
    };
    let given = react(BO, "1");
    assert_eq!(given.status, 200, "{}", given.text());
    let body = json(&given.body);
    let bo_tag = body["device"].as_str().unwrap().to_string();
    assert_eq!(
        body["message"]["reactions"][0]["by"][0]["device"],
        bo_tag.as_str()
    );
    assert_ne!(bo_tag, BO, "the tag, never the secret");
    // Twice is once: no second event.
    assert_eq!(react(BO, "1").status, 200);
    let edit = form(
        addr,
        &format!("/message/{id}/edit"),
        &format!("message=Pizza+at+8%3F&device={ANA}"),
    );
    assert_eq!(edit.status, 200, "{}", edit.text());
    let event = stream.next().unwrap();
    assert_eq!(event.event, "react");
    let data = json(event.data.as_bytes());
    assert_eq!(
        (data["id"].as_str(), data["on"].as_bool()),
        (Some(id.as_str()), Some(true))
    );
    let react_id = event.id.clone();
    let event = stream.next().unwrap();
    assert_eq!(event.event, "edit", "the repeated reaction sent nothing");
    assert_eq!(json(event.data.as_bytes())["text"], "Pizza at 8?");
    assert_eq!(react(BO, "0").status, 200);
    assert_eq!(stream.next().unwrap().event, "react");
    let gone = form(
        addr,
        &format!("/message/{id}/delete"),
        &format!("device={ANA}"),
    );
    assert_eq!(gone.status, 200, "{}", gone.text());
    assert_eq!(json(&gone.body)["message"]["deleted"], true);
    let event = stream.next().unwrap();
    assert_eq!(event.event, "delete");
    assert_eq!(event.data, format!(r#"{{"id":"{id}","own":true}}"#));

    // A page that saw the first reaction is sent the rest once, in order.
    let mut again = Stream::open(addr, Some(&react_id));
    let kinds: Vec<String> = (0..3).map(|_| again.next().unwrap().event).collect();
    assert_eq!(kinds, ["edit", "react", "delete"]);
    // A new page is sent the message as it stands: deleted, with nothing of it.
    let mut fresh = Stream::open(addr, None);
    let now = fresh.next_message().unwrap();
    assert_eq!(
        (now["deleted"].as_bool(), now["text"].as_str()),
        (Some(true), Some(""))
    );
    assert!(now.get("reactions").is_none());
    // Nothing changes it now.
    assert_eq!(code(&react(BO, "1")), (404, "no_such_message".into()));
}

#[test]
fn only_its_own_device_changes_a_message_and_each_refusal_has_its_code() {
    let server = TestServer::start();
    let addr = server.addr;
    let id = post_from(addr, ANA, "mine", "")["id"]
        .as_str()
        .unwrap()
        .to_string();
    let anonymous = say(addr, "no device");
    let path = |id: &str, what: &str| format!("/message/{id}/{what}");
    let cases = [
        (
            path(&id, "edit"),
            format!("message=x&device={BO}"),
            (403, "not_your_message"),
        ),
        (
            path(&id, "delete"),
            format!("device={BO}"),
            (403, "not_your_message"),
        ),
        (
            path(&anonymous, "delete"),
            format!("device={BO}"),
            (403, "not_your_message"),
        ),
        (
            path(&id, "edit"),
            "message=x".to_string(),
            (400, "device_needed"),
        ),
        (
            path(&id, "edit"),
            format!("message=+&device={ANA}"),
            (400, "message_empty"),
        ),
        (
            path(&id, "edit"),
            "message=x&device=short".to_string(),
            (400, "bad_device"),
        ),
        (
            path(&id, "react"),
            format!("emoji=x&device={BO}"),
            (400, "bad_reaction"),
        ),
        (
            path(&id, "react"),
            format!("emoji=%F0%9F%91%8D&on=2&device={BO}"),
            (400, "bad_reaction"),
        ),
        (
            path("1-99999", "react"),
            format!("emoji=%F0%9F%91%8D&device={BO}"),
            (404, "no_such_message"),
        ),
        (
            path("nope", "react"),
            format!("emoji=%F0%9F%91%8D&device={BO}"),
            (404, "no_such_message"),
        ),
    ];
    for (path, body, want) in cases {
        let res = form(addr, &path, &body);
        assert_eq!(code(&res), (want.0, want.1.to_string()), "{path} {body}");
    }
    // From another site: refused before anything is read.
    let res = request(
        addr,
        "POST",
        &path(&id, "delete"),
        &[
            "Content-Type: application/x-www-form-urlencoded",
            "Accept: application/json",
            "Origin: http://evil.example",
        ],
        format!("device={ANA}").as_bytes(),
    );
    assert_eq!(res.status, 403);
    let res = get(addr, "/messages?limit=1");
    assert_eq!(
        json(&res.body)["messages"][0]["text"],
        "no device",
        "nothing changed"
    );
}

#[test]
fn a_reply_carries_what_it_answers_and_search_finds_words_case_and_accents_aside() {
    let server = TestServer::start();
    let addr = server.addr;
    let original = post_from(addr, ANA, "Le WiFi du café: Tür-7", "");
    let id = original["id"].as_str().unwrap();
    let reply = post_from(addr, BO, "merci", &format!("&reply={id}"));
    assert_eq!(reply["reply"]["id"], id);
    assert_eq!(reply["reply"]["text"], "Le WiFi du café: Tür-7");
    let lost = post_from(addr, BO, "what?", "&reply=1-424242");
    assert_eq!(lost["reply"]["missing"], true);
    assert_eq!(
        code(&post_json(addr, "message=x&reply=nope")),
        (400, "bad_reply".into())
    );
    for _ in 0..30 {
        say(addr, "chatter");
    }
    let found = json(&get(addr, "/messages?q=W%C3%8FFI+CAFE").body);
    let texts: Vec<&str> = found["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["text"].as_str().unwrap())
        .collect();
    assert_eq!(texts, ["Le WiFi du café: Tür-7"]);
    assert_eq!(found["more"], false);
    let nothing = json(&get(addr, "/messages?q=tur-8").body);
    assert_eq!(nothing["messages"].as_array().unwrap().len(), 0);
    let long = format!("/messages?q={}", "a".repeat(201));
    for bad in ["/messages?q=+", long.as_str()] {
        assert_eq!(
            code(&request(
                addr,
                "GET",
                bad,
                &["Accept: application/json"],
                b""
            ))
            .1,
            "bad_query"
        );
    }
}

#[test]
fn a_message_its_sender_takes_back_takes_its_photos_with_it() {
    let server = TestServer::start();
    let addr = server.addr;
    let body = multipart(
        &[("message", "my room"), ("device", ANA)],
        &[("a.jpg", "image/jpeg", &jpeg(1000))],
    );
    let res = upload(addr, &body, &[]);
    assert_eq!(res.status, 201, "{}", res.text());
    let m = json(&res.body);
    let photo = format!("/media/{}", m["files"][0]["id"].as_str().unwrap());
    assert_eq!(get(addr, &photo).status, 200);
    let id = m["id"].as_str().unwrap();
    let gone = form(
        addr,
        &format!("/message/{id}/delete"),
        &format!("device={ANA}"),
    );
    assert_eq!(gone.status, 200, "{}", gone.text());
    assert_eq!(get(addr, &photo).status, 410);
    let page = json(&get(addr, "/messages").body);
    assert_eq!(page["messages"][0]["files"], serde_json::Value::Null);
    assert_eq!(page["messages"][0]["deleted"], true);
}
