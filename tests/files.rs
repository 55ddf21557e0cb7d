//! Photos and files in messages (`multipart/form-data`): stored as they arrive,
//! within `--max-upload` and `--media-quota`, served by id with `ETag` and `Range`,
//! images inline only when their bytes are images, everything else a sandboxed
//! download; the key, a moderator's deletion, restarts with `--data-dir`, and the
//! memory twenty uploads at once take.

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use common::*;

fn post_photo(addr: SocketAddr, caption: &str, name: &str, bytes: &[u8]) -> serde_json::Value {
    let res = upload(
        addr,
        &multipart(
            &[("message", caption), ("name", "Ada")],
            &[(name, "image/jpeg", bytes)],
        ),
        &[],
    );
    assert_eq!(res.status, 201, "{}", res.text());
    json(&res.body)
}

struct Dir(PathBuf);
impl Dir {
    fn new(name: &str) -> Dir {
        let dir = std::env::temp_dir().join(format!("lanchat-files-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        Dir(dir)
    }
}
impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn media_files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir.join("media"))
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

#[test]
fn a_photo_reaches_everyone_with_its_size_and_is_served_inline_cached_and_in_ranges() {
    let server = TestServer::start();
    let mut stream = Stream::open(server.addr, None);
    let photo = jpeg(300_000);
    let m = post_photo(server.addr, "the whiteboard", "IMG_0042.JPG", &photo);
    assert_eq!(m["text"], "the whiteboard");
    let file = &m["files"][0];
    assert_eq!(
        (
            file["name"].as_str(),
            file["type"].as_str(),
            file["size"].as_u64()
        ),
        (Some("IMG_0042.JPG"), Some("image/jpeg"), Some(300_000))
    );
    assert_eq!(
        (file["width"].as_u64(), file["height"].as_u64()),
        (Some(1600), Some(1200))
    );
    assert_eq!(
        stream.next_message().unwrap(),
        m,
        "the same message for everyone"
    );

    let id = file["id"].as_str().unwrap();
    assert_eq!(id.len(), 32);
    let got = get(server.addr, &format!("/media/{id}"));
    assert_eq!(got.status, 200);
    assert_eq!(got.body, photo);
    assert_eq!(got.header("content-type"), Some("image/jpeg"));
    assert_eq!(got.header("x-content-type-options"), Some("nosniff"));
    assert!(got.header("cache-control").unwrap().contains("immutable"));
    assert!(got.header("content-disposition").is_none(), "inline");
    let etag = got.header("etag").unwrap().to_string();
    let again = request(
        server.addr,
        "GET",
        &format!("/media/{id}"),
        &[&format!("If-None-Match: {etag}")],
        b"",
    );
    assert_eq!((again.status, again.body.len()), (304, 0));
    let weak = request(
        server.addr,
        "GET",
        &format!("/media/{id}"),
        &[&format!("If-None-Match: W/{etag}")],
        b"",
    );
    assert_eq!(weak.status, 304, "weak comparison");
    let part = request(
        server.addr,
        "GET",
        &format!("/media/{id}"),
        &["Range: bytes=100-199"],
        b"",
    );
    assert_eq!(part.status, 206);
    assert_eq!(part.header("content-range"), Some("bytes 100-199/300000"));
    assert_eq!(part.body, &photo[100..200]);
    let beyond = request(
        server.addr,
        "GET",
        &format!("/media/{id}"),
        &["Range: bytes=400000-"],
        b"",
    );
    assert_eq!(
        (beyond.status, beyond.header("content-range")),
        (416, Some("bytes */300000"))
    );
    // A photo needs no caption; a post with neither text nor file is still refused.
    let bare = post_photo(server.addr, "  ", "p.jpg", &jpeg(100));
    assert_eq!(bare["text"], "");
    let empty = upload(server.addr, &multipart(&[("message", " ")], &[]), &[]);
    assert_eq!(empty.status, 400);
    assert_eq!(get(server.addr, "/media/nope").status, 404);
    assert_eq!(
        get(server.addr, &format!("/media/{}", "0".repeat(32))).status,
        410
    );
}

#[test]
fn only_image_bytes_are_shown_inline_and_everything_else_is_a_sandboxed_download() {
    let server = TestServer::start();
    let html = b"<!doctype html><script>alert(document.cookie)</script>";
    let svg = b"<svg xmlns=\"http://www.w3.org/2000/svg\" onload=\"alert(1)\"/>";
    let pdf = b"%PDF-1.7 menu";
    let res = upload(
        server.addr,
        &multipart(
            &[("message", "files")],
            &[
                ("page.html", "text/html", html),
                ("cat.jpg", "image/jpeg", svg),
                ("menü.pdf", "application/pdf", pdf),
            ],
        ),
        &[],
    );
    assert_eq!(res.status, 201, "{}", res.text());
    let m = json(&res.body);
    let kinds: Vec<&str> = m["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        ["text/html", "application/octet-stream", "application/pdf"],
        "as sent, unless it claims an image it is not"
    );
    for f in m["files"].as_array().unwrap() {
        let got = get(
            server.addr,
            &format!("/media/{}", f["id"].as_str().unwrap()),
        );
        assert_eq!(got.status, 200);
        assert_eq!(
            got.header("content-type"),
            Some("application/octet-stream"),
            "{f}"
        );
        assert!(
            got.header("content-disposition")
                .unwrap()
                .starts_with("attachment;"),
            "{f}"
        );
        assert_eq!(got.header("content-security-policy"), Some("sandbox"));
    }
    let pdf_id = m["files"][2]["id"].as_str().unwrap();
    let got = get(server.addr, &format!("/media/{pdf_id}"));
    assert!(got
        .header("content-disposition")
        .unwrap()
        .contains("filename*=UTF-8''men%C3%BC.pdf"));
}

#[test]
fn a_file_over_the_limit_gets_413_and_leaves_nothing_behind() {
    let dir = Dir::new("limit");
    let data = dir.0.clone();
    let server = TestServer::with(move |c| {
        c.data_dir = Some(data);
        c.max_upload = 100 << 10;
        c.body_timeout = std::time::Duration::from_millis(500);
    });
    let mut stream = Stream::open(server.addr, None);
    let body = multipart(
        &[("message", "too big")],
        &[("a.jpg", "image/jpeg", &jpeg(101 << 10))],
    );
    let res = upload(server.addr, &body, &[]);
    assert_eq!(res.status, 413);
    assert!(res.text().contains("the most is 100 KiB"), "{}", res.text());
    assert!(media_files(&dir.0).is_empty(), "{:?}", media_files(&dir.0));
    // The next one goes, and it is the only message.
    let ok = post_photo(server.addr, "fits", "b.jpg", &jpeg(100 << 10));
    assert_eq!(stream.next_message().unwrap()["id"], ok["id"]);
    assert_eq!(media_files(&dir.0).len(), 2, "the file and its description");
    // Cut short: nothing either.
    let mut cut = body.clone();
    cut.truncate(50_000);
    let kind = format!("Content-Type: multipart/form-data; boundary={BOUNDARY}");
    let res = raw(server.addr, &{
        let mut r = build(server.addr, "POST", "/message", &[&kind], b"");
        // The length of the whole body, and then less of it: the client went away.
        let head = String::from_utf8(r.clone()).unwrap().replace(
            "Content-Length: 0",
            &format!("Content-Length: {}", body.len()),
        );
        r = head.into_bytes();
        r.extend_from_slice(&cut);
        r.extend_from_slice(b"");
        r
    });
    // The rest never comes while the client waits for an answer: too slow.
    assert_eq!(res.status, 408, "{}", res.text());
    assert_eq!(media_files(&dir.0).len(), 2, "{:?}", media_files(&dir.0));
}

#[test]
fn the_quota_lets_the_oldest_go_and_they_answer_410() {
    let server = TestServer::with(|c| {
        c.max_upload = 400 << 10;
        c.media_quota = Some(1 << 20);
        // One client's share as large as the quota: the quota alone decides here.
        c.media_share = Some(1 << 20);
    });
    let ids: Vec<String> = (0..3)
        .map(|i| {
            post_photo(server.addr, &format!("p{i}"), "p.jpg", &jpeg(400 << 10))["files"][0]["id"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    let gone = get(server.addr, &format!("/media/{}", ids[0]));
    assert_eq!(gone.status, 410);
    assert!(gone.text().contains("no longer kept"), "{}", gone.text());
    for id in &ids[1..] {
        assert_eq!(get(server.addr, &format!("/media/{id}")).status, 200);
    }
}

#[test]
fn files_need_the_key_and_go_with_their_deleted_message() {
    let server = TestServer::with(|c| {
        c.key = Some("k".into());
        c.mod_key = Some("moderator".into());
    });
    let cookie = format!("Cookie: lanchat_key={}", key_token(server.addr, "k"));
    let res = upload(
        server.addr,
        &multipart(&[("message", "x")], &[("a.jpg", "image/jpeg", &jpeg(1000))]),
        &[&cookie],
    );
    assert_eq!(res.status, 201, "{}", res.text());
    let m = json(&res.body);
    let path = format!("/media/{}", m["files"][0]["id"].as_str().unwrap());
    assert_eq!(get(server.addr, &path).status, 401);
    let with_key = request(server.addr, "GET", &path, &[&cookie], b"");
    assert_eq!(with_key.status, 200);
    // The moderator's routes need the chat's key too.
    let target = format!("/message/{}?mod=moderator", m["id"].as_str().unwrap());
    assert_eq!(
        request(server.addr, "DELETE", &target, &[], b"").status,
        401
    );
    let deleted = request(server.addr, "DELETE", &target, &[&cookie], b"");
    assert_eq!(deleted.status, 204);
    let after = request(server.addr, "GET", &path, &[&cookie], b"");
    assert_eq!(after.status, 410);
}

#[test]
fn with_a_data_dir_files_and_their_messages_survive_a_restart() {
    let dir = Dir::new("restart");
    let data = dir.0.clone();
    let start = move || {
        let data = data.clone();
        TestServer::with(move |c| c.data_dir = Some(data))
    };
    let mut server = start();
    let photo = jpeg(50_000);
    let m = post_photo(server.addr, "kept", "k.jpg", &photo);
    server.stop();
    let server = start();
    let mut stream = Stream::open(server.addr, None);
    assert_eq!(stream.next_message().unwrap(), m);
    let got = get(
        server.addr,
        &format!("/media/{}", m["files"][0]["id"].as_str().unwrap()),
    );
    assert_eq!((got.status, got.body == photo), (200, true));
}

#[test]
fn the_form_without_javascript_attaches_a_file_too() {
    let server = TestServer::start();
    let kind = format!("Content-Type: multipart/form-data; boundary={BOUNDARY}");
    let body = multipart(
        &[("name", "Bo"), ("message", "from the form")],
        &[("", "application/octet-stream", b"")],
    );
    let res = request(server.addr, "POST", "/message", &[&kind], &body);
    assert_eq!(
        (res.status, res.header("location")),
        (303, Some("/")),
        "no file chosen is fine"
    );
    let body = multipart(
        &[("message", "with a file")],
        &[("notes.txt", "text/plain", b"hello")],
    );
    let res = request(server.addr, "POST", "/message", &[&kind], &body);
    assert_eq!(res.status, 303);
    let recent = get(server.addr, "/recent").text();
    assert!(recent.contains("with a file"), "{recent}");
}

/// Resident memory of a process, in KiB.
#[test]
fn twenty_uploads_of_10_mib_at_once_are_all_stored_whole() {
    // Their memory is measured by scripts/upload-memory (a benchmark, not a test).
    let dir = Dir::new("twenty");
    let data = dir.0.clone();
    let server = TestServer::with(move |c| {
        c.data_dir = Some(data);
        // All from one address: its share must hold all twenty.
        c.media_share = Some(1 << 30);
    });
    let addr = server.addr;
    let photo = jpeg(10 << 20);
    let body = multipart(&[("message", "big")], &[("big.jpg", "image/jpeg", &photo)]);
    let uploads: Vec<_> = (0..20)
        .map(|_| {
            let body = body.clone();
            std::thread::spawn(move || upload(addr, &body, &[]))
        })
        .collect();
    for u in uploads {
        let res = u.join().unwrap();
        let id = file_id(&res);
        let kept = std::fs::metadata(dir.0.join("media").join(&id)).unwrap();
        assert_eq!(kept.len(), 10 << 20);
    }
}

#[test]
fn an_upload_past_the_post_rate_gets_429_and_its_file_is_not_kept() {
    let dir = Dir::new("rate");
    let data = dir.0.clone();
    let server = TestServer::with(move |c| {
        c.data_dir = Some(data);
        c.post_rate = Some(lanchat::config::Rate {
            burst: 1,
            every: std::time::Duration::from_secs(60),
        });
    });
    post_photo(server.addr, "first", "a.jpg", &jpeg(10_000));
    let res = upload(
        server.addr,
        &multipart(
            &[("message", "second")],
            &[("b.jpg", "image/jpeg", &jpeg(10_000))],
        ),
        &[],
    );
    assert_eq!(res.status, 429, "{}", res.text());
    assert!(res.header("retry-after").is_some());
    assert_eq!(
        media_files(&dir.0).len(),
        2,
        "only the first file and its description: {:?}",
        media_files(&dir.0)
    );
}

/// Writes a multipart post's head and first bytes on a new connection, and returns
/// the connection to go on with.
fn start_upload(addr: SocketAddr, length: u64, first: &[u8]) -> std::net::TcpStream {
    use std::io::Write as _;
    let head = format!(
        "POST /message HTTP/1.1\r\nHost: {addr}\r\nAccept: application/json\r\n\
         Content-Type: multipart/form-data; boundary={BOUNDARY}\r\nContent-Length: {length}\r\n\r\n"
    );
    let mut s = connect(addr);
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(first).unwrap();
    s
}

/// Reads the answer to a request whose body may still be being sent.
fn answer(s: &std::net::TcpStream) -> Response {
    read_response(&mut std::io::BufReader::new(s.try_clone().unwrap())).expect("an answer")
}

#[test]
fn an_upload_over_the_post_rate_is_answered_before_its_file_is_sent() {
    let dir = Dir::new("early");
    let data = dir.0.clone();
    let server = TestServer::with(move |c| {
        c.data_dir = Some(data);
        c.post_rate = Some(lanchat::config::Rate {
            burst: 1,
            every: std::time::Duration::from_secs(60),
        });
    });
    post_photo(server.addr, "first", "a.jpg", &jpeg(10_000));
    // The fields and the file's head; the file's 10 MiB are never sent.
    let fields = format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"message\"\r\n\r\nsecond\r\n\
         --{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"b.jpg\"\r\n\
         Content-Type: image/jpeg\r\n\r\n"
    );
    let s = start_upload(server.addr, 10 << 20, fields.as_bytes());
    let res = answer(&s);
    assert_eq!(res.status, 429, "{}", res.text());
    assert!(res.header("retry-after").is_some());
    assert_eq!(media_files(&dir.0).len(), 2, "{:?}", media_files(&dir.0));
}

#[test]
fn a_body_of_endless_long_named_fields_gets_413_and_the_chat_goes_on() {
    let server = TestServer::start();
    let name = "n".repeat(4000);
    let part =
        format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n\r\n");
    // 160 MB announced, as many parts as fit; the server stops reading long before.
    let s = start_upload(server.addr, 160 << 20, part.as_bytes());
    let mut writer = s.try_clone().unwrap();
    let sending = std::thread::spawn(move || {
        use std::io::Write as _;
        let mut sent = 0u64;
        while sent < 160 << 20 && writer.write_all(part.as_bytes()).is_ok() {
            sent += part.len() as u64;
        }
        sent
    });
    let res = answer(&s);
    assert_eq!(res.status, 413, "{}", res.text());
    drop(s);
    let sent = sending.join().unwrap();
    assert!(
        sent < 16 << 20,
        "the server read {sent} bytes before it answered"
    );
    let mut stream = Stream::open(server.addr, None);
    let id = say(server.addr, "still here");
    assert_eq!(stream.next_message().unwrap()["id"], id.as_str());
}

#[test]
fn an_upload_trickled_slower_than_the_body_rate_is_cut_with_408() {
    let server = TestServer::with(|c| {
        c.body_timeout = std::time::Duration::from_millis(500);
        c.body_rate = 64 << 10;
    });
    let head = format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"slow.jpg\"\r\n\
         Content-Type: image/jpeg\r\n\r\n"
    );
    let s = start_upload(server.addr, 4 << 20, head.as_bytes());
    let mut writer = s.try_clone().unwrap();
    // 9 KB every 200 ms: 45 KB a second, each piece well within the body timeout,
    // for longer than a test waits.
    let trickle = std::thread::spawn(move || {
        use std::io::Write as _;
        for _ in 0..60 {
            if writer.write_all(&[0x5a; 9000]).is_err() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
    });
    let res = answer(&s);
    assert_eq!(res.status, 408, "{}", res.text());
    assert_eq!(res.header("connection"), Some("close"));
    drop(s);
    trickle.join().unwrap();
}

/// An upload from another client address.
fn upload_from(from: std::net::IpAddr, addr: SocketAddr, body: &[u8]) -> Response {
    let kind = format!("Content-Type: multipart/form-data; boundary={BOUNDARY}");
    request_from(
        from,
        addr,
        "POST",
        "/message",
        &[&kind, "Accept: application/json"],
        body,
    )
}

fn file_id(res: &Response) -> String {
    assert_eq!(res.status, 201, "{}", res.text());
    json(&res.body)["files"][0]["id"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn one_phone_posting_photos_pushes_out_its_own_oldest_not_everyone_elses() {
    let server = TestServer::with(|c| {
        c.max_upload = 300 << 10;
        c.media_quota = Some(4 << 20);
        c.media_share = Some(1 << 20);
    });
    let photo = multipart(
        &[("message", "p")],
        &[("p.jpg", "image/jpeg", &jpeg(256 << 10))],
    );
    let other: std::net::IpAddr = [127, 0, 0, 2].into();
    let theirs: Vec<String> = (0..2)
        .map(|_| file_id(&upload_from(other, server.addr, &photo)))
        .collect();
    let me: std::net::IpAddr = [127, 0, 0, 1].into();
    let mine: Vec<String> = (0..30)
        .map(|_| file_id(&upload_from(me, server.addr, &photo)))
        .collect();
    for id in &theirs {
        assert_eq!(
            get(server.addr, &format!("/media/{id}")).status,
            200,
            "the other phone's"
        );
    }
    let kept: Vec<&String> = mine
        .iter()
        .filter(|id| get(server.addr, &format!("/media/{id}")).status == 200)
        .collect();
    // Within a share of 1 MiB: three photos of 256 KiB (and what each costs beside), the newest.
    assert_eq!(kept, mine[27..].iter().collect::<Vec<_>>());
}

#[test]
fn a_post_sent_again_keeps_one_copy_of_its_file_and_files_leave_with_their_messages() {
    let dir = Dir::new("orphans");
    let data = dir.0.clone();
    let server = TestServer::with(move |c| {
        c.data_dir = Some(data);
        c.history = 3;
    });
    let body = multipart(
        &[("message", "again"), ("cid", "c0ffee")],
        &[("a.jpg", "image/jpeg", &jpeg(20_000))],
    );
    let first = upload(server.addr, &body, &[]);
    let again = upload(server.addr, &body, &[]);
    assert_eq!(
        json(&again.body),
        json(&first.body),
        "the message it already is"
    );
    let id = file_id(&first);
    assert_eq!(media_files(&dir.0), [id.clone(), format!("{id}.json")]);
    // The message leaves history (3 kept): its photo goes with it.
    for i in 0..3 {
        say(server.addr, &format!("later {i}"));
    }
    let started = std::time::Instant::now();
    while !media_files(&dir.0).is_empty() {
        assert!(
            started.elapsed() < WAIT,
            "{:?} still kept",
            media_files(&dir.0)
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert_eq!(get(server.addr, &format!("/media/{id}")).status, 410);
}
