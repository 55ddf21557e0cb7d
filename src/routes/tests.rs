//! Routing as a function of the request: the table, access, and answers, with a
//! registry running beside it and no socket.

use std::sync::Arc;
use std::time::Duration;

use http_types::{Method, Request, Response, StatusCode};

use super::*;
use crate::config::Config;
use crate::http::download::FileHead;
use crate::keys::{Keys, Secret};
use crate::media::Media;
use crate::registry::{self, Options};

/// A request as a browser on the chat's own address sends it, to `path`.
fn request(method: Method, path: &str, headers: &[(&str, &str)]) -> Request {
    let url = http_types::Url::parse(&format!("http://lanchat{path}")).unwrap();
    let mut req = Request::new(method, url);
    req.insert_header("host", "10.42.0.1");
    for (name, value) in headers {
        req.insert_header(*name, *value);
    }
    req
}

/// A server's shared state with `config`, and a registry task to run beside it.
fn shared(config: Config) -> (Shared, impl std::future::Future<Output = ()>) {
    let (registry, task) = registry::new(Options {
        history: 10,
        backlog: 10,
        queue: 4,
        heartbeat: Duration::from_secs(60),
        epoch: 5,
        store: None,
        post_rate: config.post_rate,
        restored: Vec::new(),
        released: None,
    });
    let secret = Secret::load(None).unwrap();
    let keys = Keys::new(config.key.as_deref(), config.mod_key.as_deref(), &secret);
    let media = Media::open(None, config.media_limits(), &Default::default()).unwrap();
    let (_stop_tx, stop) = async_channel::bounded(1);
    let shared = Shared {
        registry,
        stop,
        executors: Arc::default(),
        opening: crate::sse::chunk(b""),
        media,
        keys,
        let_in: Default::default(),
        config,
    };
    (shared, task)
}

/// The answer as a client would read its head (`None` for an event stream).
fn head_of(reply: Reply) -> Option<Response> {
    match reply {
        Reply::Response(res) => Some(*res),
        Reply::File(download) => Some(match download.head {
            FileHead::Response(res) => *res,
            FileHead::Lines(status, lines) => {
                let mut res = Response::new(status);
                for line in lines.lines() {
                    let (name, value) = line.split_once(": ").unwrap();
                    res.insert_header(name, value);
                }
                res
            }
        }),
        Reply::Events(_) => None,
        Reply::ComeBackLater => None,
    }
}

/// Sends each request in turn to one server with `config`; their answers.
fn answers(config: Config, requests: Vec<Request>) -> Vec<Option<Response>> {
    let (shared, task) = shared(config);
    let ex = smol::LocalExecutor::new();
    ex.spawn(task).detach();
    let peer = Peer {
        client: IpAddr::from([127, 0, 0, 1]),
        local: Some(SocketAddr::from(([10, 42, 0, 1], 80))),
    };
    let out = smol::block_on(ex.run(async {
        let mut out = Vec::new();
        for req in requests {
            out.push(head_of(handle(req, peer, &shared).await));
        }
        out
    }));
    shared.registry.shutdown();
    out
}

fn route(config: &Config, req: Request) -> Option<Response> {
    answers(config.clone(), vec![req]).pop().flatten()
}

fn status(config: &Config, method: Method, path: &str, headers: &[(&str, &str)]) -> u16 {
    route(config, request(method, path, headers)).map_or(200, |r| r.status().into())
}

fn text(res: &mut Response) -> String {
    smol::block_on(res.take_body().into_string()).unwrap()
}

#[test]
fn unknown_paths_are_404_and_wrong_methods_405_with_what_is_allowed() {
    let config = Config::default();
    let mut res = route(&config, request(Method::Get, "/nope", &[])).unwrap();
    assert_eq!(res.status(), StatusCode::NotFound);
    assert!(text(&mut res).contains("no such page"));
    for (method, path, allow) in [
        (Method::Post, "/events", "GET"),
        (Method::Get, "/message", "POST"),
        (Method::Delete, "/recent", "GET, HEAD"),
        (Method::Post, "/style.css", "GET, HEAD"),
        (Method::Get, "/message/5-1", "DELETE"),
        (Method::Get, "/message/5-1/mute", "POST"),
    ] {
        let res = route(&config, request(method, path, &[])).unwrap();
        assert_eq!(
            res.status(),
            StatusCode::MethodNotAllowed,
            "{method} {path}"
        );
        assert_eq!(res.header("allow").unwrap().as_str(), allow);
    }
    for path in ["/nope", "/message/5-1/other", "/media/a/b", "/portal"] {
        assert_eq!(status(&config, Method::Post, path, &[]), 404, "{path}");
    }
}

/// A path the pattern matches, with `id` for the parameter.
fn sample(pattern: Pattern, id: &str) -> Vec<String> {
    match pattern {
        Pattern::Exact(path) => vec![path.to_string()],
        Pattern::Segment(prefix) => vec![format!("{prefix}{id}")],
        Pattern::Between(prefix, suffix) => vec![format!("{prefix}{id}{suffix}")],
        Pattern::Asset => [
            "/style.css",
            "/main.js",
            "/icon.svg",
            "/manifest.webmanifest",
        ]
        .map(String::from)
        .to_vec(),
    }
}

#[test]
fn with_a_key_only_the_routes_marked_public_answer_without_it() {
    let config = Config {
        key: Some("tea-time".into()),
        mod_key: Some("host-only".into()),
        portal: true,
        ..Config::default()
    };
    let mut requests = Vec::new();
    let mut asked = Vec::new();
    // A message to act on, posted with the key.
    requests.push(request(
        Method::Post,
        "/message?key=tea-time",
        &[("content-type", "application/x-www-form-urlencoded")],
    ));
    requests[0].set_body("message=hi");
    for (methods, pattern, route) in TABLE {
        for method in *methods {
            for path in sample(*pattern, "5-1") {
                let mut req = request(*method, &path, &[("accept", "application/json")]);
                if *method == Method::Post {
                    req.insert_header("content-type", "application/x-www-form-urlencoded");
                    req.set_body("message=x");
                }
                requests.push(req);
                asked.push((*method, path, *route));
            }
        }
    }
    let answers = answers(config, requests);
    assert_eq!(answers[0].as_ref().unwrap().status(), StatusCode::SeeOther);
    for ((method, path, route), answer) in asked.iter().zip(&answers[1..]) {
        let status = answer.as_ref().map_or(200, |r| u16::from(r.status()));
        let ok = (200..300).contains(&status);
        match route.access() {
            Access::Public => assert!(ok, "{method} {path}: {status}"),
            Access::Key | Access::Moderator | Access::Own => {
                assert!([401, 403].contains(&status), "{method} {path}: {status}")
            }
        }
    }
    // Every route of the table was walked.
    for (_, _, route) in TABLE {
        assert!(asked.iter().any(|(_, _, r)| r == route), "{route:?}");
    }
}

#[test]
fn the_moderators_routes_need_the_moderator_beside_the_key() {
    let config = Config {
        key: Some("tea-time".into()),
        mod_key: Some("host-only".into()),
        ..Config::default()
    };
    let mut post = request(
        Method::Post,
        "/message?key=tea-time",
        &[("content-type", "application/x-www-form-urlencoded")],
    );
    post.set_body("message=hi");
    let statuses: Vec<u16> = answers(
        config,
        vec![
            post,
            request(Method::Delete, "/message/5-1?key=tea-time", &[]),
            request(Method::Delete, "/message/5-1?mod=host-only", &[]),
            request(
                Method::Delete,
                "/message/5-1?key=tea-time&mod=host-only",
                &[],
            ),
        ],
    )
    .into_iter()
    .map(|r| r.map_or(200, |r| r.status().into()))
    .collect();
    assert_eq!(statuses, [303, 403, 401, 204]);
}

#[test]
fn assets_revalidate_with_their_etag_and_come_gzipped_when_accepted() {
    let config = Config::default();
    let res = route(&config, request(Method::Get, "/", &[])).unwrap();
    assert_eq!(res.status(), StatusCode::Ok);
    assert!(res.header("content-encoding").is_none());
    let etag = res.header("etag").unwrap().as_str().to_string();
    let again = route(
        &config,
        request(Method::Get, "/", &[("if-none-match", &etag)]),
    );
    assert_eq!(again.unwrap().status(), StatusCode::NotModified);
    let gz = route(
        &config,
        request(Method::Get, "/main.js", &[("accept-encoding", "gzip, br")]),
    )
    .unwrap();
    assert_eq!(gz.header("content-encoding").unwrap().as_str(), "gzip");
    assert_eq!(gz.header("vary").unwrap().as_str(), "accept-encoding");
    let plain = route(&config, request(Method::Get, "/main.js", &[])).unwrap();
    let tag = |res: &Response| res.header("etag").unwrap().as_str().to_string();
    assert_ne!(tag(&gz), tag(&plain), "one tag per encoding");
}

#[test]
fn with_a_key_the_page_gets_a_token_cookie_and_a_locked_page_without() {
    let config = Config {
        key: Some("tea-time".into()),
        ..Config::default()
    };
    let mut locked = route(&config, request(Method::Get, "/", &[])).unwrap();
    assert_eq!(locked.status(), StatusCode::Unauthorized);
    assert!(text(&mut locked).contains("needs its key"));
    let opened = route(&config, request(Method::Get, "/?key=tea-time", &[])).unwrap();
    assert_eq!(opened.status(), StatusCode::SeeOther);
    assert_eq!(opened.header("location").unwrap().as_str(), "/");
    let cookie = opened.header("set-cookie").unwrap().as_str();
    assert!(cookie.starts_with("lanchat_key=") && cookie.contains("HttpOnly"));
    assert!(
        !cookie.contains("tea-time"),
        "a token, not the key: {cookie}"
    );
    let with_key_itself = [("cookie", "theme=dark; lanchat_key=tea-time")];
    assert_eq!(status(&config, Method::Get, "/", &with_key_itself), 401);
    assert_eq!(status(&config, Method::Get, "/?key=wrong", &[]), 401);
    assert_eq!(status(&config, Method::Get, "/style.css", &[]), 200);
    assert_eq!(
        status(&config, Method::Get, "/events?key=tea-time", &[]),
        200
    );
}

#[test]
fn a_post_is_stored_and_answered_as_the_client_asked_and_refusals_carry_a_code() {
    let config = Config::default();
    let form = [("content-type", "application/x-www-form-urlencoded")];
    let mut req = request(Method::Post, "/message", &form);
    req.insert_header("accept", "application/json");
    req.set_body("name=Ada&message=hello");
    let mut res = route(&config, req).unwrap();
    assert_eq!(res.status(), StatusCode::Created);
    let json: serde_json::Value = serde_json::from_str(&text(&mut res)).unwrap();
    assert_eq!(
        (json["id"].as_str(), json["text"].as_str()),
        (Some("5-1"), Some("hello"))
    );
    let mut req = request(Method::Post, "/message", &form);
    req.set_body("message=hi");
    let res = route(&config, req).unwrap();
    assert_eq!(
        res.status(),
        StatusCode::SeeOther,
        "a plain form goes back to the page"
    );
    let mut req = request(Method::Post, "/message", &[("content-type", "text/plain")]);
    req.set_body("message=hi");
    assert_eq!(
        route(&config, req).unwrap().status(),
        StatusCode::UnsupportedMediaType
    );
    let mut req = request(Method::Post, "/message", &form);
    req.insert_header("origin", "http://elsewhere.example");
    req.insert_header("accept", "application/json");
    req.set_body("message=hi");
    let mut res = route(&config, req).unwrap();
    assert_eq!(res.status(), StatusCode::Forbidden);
    let json: serde_json::Value = serde_json::from_str(&text(&mut res)).unwrap();
    assert_eq!(json["error"], "other_site");
    let mut req = request(Method::Post, "/message", &form);
    req.insert_header("accept", "application/json");
    req.set_body("message=+");
    let mut res = route(&config, req).unwrap();
    let json: serde_json::Value = serde_json::from_str(&text(&mut res)).unwrap();
    assert_eq!(json["error"], "message_empty");
}

#[test]
fn the_limits_the_page_needs_come_from_the_server() {
    let config = Config {
        max_upload: 3 << 20,
        ..Config::default()
    };
    let mut res = route(&config, request(Method::Get, "/limits", &[])).unwrap();
    let json: serde_json::Value = serde_json::from_str(&text(&mut res)).unwrap();
    assert_eq!(json["max_upload"], 3 << 20);
    assert_eq!(json["message_chars"], crate::message::MAX_TEXT_CHARS);
    assert_eq!(json["name_chars"], crate::message::MAX_NAME_CHARS);
    assert_eq!(json["inline_types"][0], "image/jpeg");
    assert_eq!(json["mute_minutes"], 10);
    assert_eq!(json["reactions"][0], "\u{1f44d}");
    assert_eq!(json["reactions"].as_array().unwrap().len(), 6);
    assert_eq!(json["edit_minutes"], 15);
}
