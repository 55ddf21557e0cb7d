//! Routing: one table of (methods, path pattern) to a [`Route`], every route with
//! the access it needs, and handlers grouped by concern:
//!
//! | file | handles |
//! | --- | --- |
//! | [`chat`] | the stream, posts, older messages, the page without JavaScript, `/ping`, `/limits` |
//! | [`files`] | shared files (`Range`, `ETag`) and the page's own files |
//! | [`conversation`] | reactions, a device's edit and deletion of its own message, search |
//! | [`moderation`] | the moderator's deletion and mute |
//! | [`portal`] | hotspot mode: other sites' requests, `POST /portal` |
//! | [`access`] | keys and their cookies, the moderator link, posts from other sites |
//!
//! Invariants:
//! - A path the table does not name is `404`; a named path with another method is
//!   `405` with `Allow`. In hotspot mode a request for another host is the portal's
//!   before the table is looked at (it is for another site, not for the chat).
//! - Every route states its access ([`Route::access`], a `match` the compiler
//!   checks is whole): a route cannot be added without saying who may use it, and
//!   with `--key` every route that is not [`Access::Public`] needs the key.
//! - Handlers never fail: every failure is an [`Error`], answered as JSON to a
//!   client that asks for JSON and as one line of text otherwise.

mod access;
mod chat;
mod conversation;
mod files;
mod moderation;
mod portal;

use std::net::{IpAddr, SocketAddr};

use http_types::headers::ACCEPT;
use http_types::{Method, Request, Response};

use crate::assets;
use crate::error::Error;
use crate::http::conn::Shared;
use crate::http::download::Download;
use crate::registry::Subscription;

/// What the connection does next.
#[derive(Debug)]
pub enum Reply {
    /// Write this response.
    Response(Box<Response>),
    /// Write this file (its head and its bytes, by the kernel where it can).
    File(Box<Download>),
    /// Write the event stream of this subscription until it or the client ends.
    Events(Subscription),
    /// Answer `/events` with `200`, a `retry:` and an end, so the browser comes back
    /// later: any other status would make it give up for good.
    ComeBackLater,
}

impl Reply {
    fn response(res: Response) -> Reply {
        Reply::Response(Box::new(res))
    }
}

/// Who sent a request, and where it arrived.
#[derive(Debug, Clone, Copy)]
pub struct Peer {
    /// The client's address.
    pub client: IpAddr,
    /// The server's address the connection came in on: where a hotspot's redirects
    /// point. Looked up in `--portal` mode only.
    pub local: Option<SocketAddr>,
}

/// Who may use a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone: it holds nothing private (the page's script and style, the icons,
    /// the manifest, which browsers fetch without cookies).
    Public,
    /// With `--key`, whoever has the key (or its cookie); anyone without one.
    Key,
    /// The moderator (the moderator key, or its cookie), and with `--key` the key too.
    Moderator,
    /// As [`Access::Key`], and only the device that sent the message: the registry
    /// checks the tag of the device secret posted against the message's
    /// (`403 not_your_message`).
    Own,
}

/// Every route the server answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// `GET /`: the page (and the moderator link `/?mod=`).
    Page,
    /// `GET /<file>`: one of the page's other files.
    Asset,
    /// `GET /events`: the event stream.
    Events,
    /// `POST /message`: a post, with or without files.
    Post,
    /// `GET /messages`: older messages, as JSON.
    Older,
    /// `GET /recent`: the newest messages as HTML, for a page without JavaScript.
    Recent,
    /// `GET /ping`: whether the server is there.
    Ping,
    /// `GET /limits`: the limits the page needs to know, as JSON.
    Limits,
    /// `GET /media/<id>`: a shared file.
    Media,
    /// `DELETE /message/<id>`: the moderator deletes a message.
    Delete,
    /// `POST /message/<id>/mute`: the moderator mutes its sender.
    Mute,
    /// `POST /message/<id>/react`: a device gives or takes back a reaction.
    React,
    /// `POST /message/<id>/edit`: its sender changes its text.
    Edit,
    /// `POST /message/<id>/delete`: its sender takes it back.
    Retract,
    /// `POST /portal`: a hotspot's client continues (hotspot mode only).
    Portal,
}

impl Route {
    /// Who may use this route.
    pub fn access(self) -> Access {
        match self {
            Route::Asset | Route::Ping | Route::Limits | Route::Portal => Access::Public,
            Route::Page
            | Route::Events
            | Route::Post
            | Route::Older
            | Route::Recent
            | Route::Media
            | Route::React => Access::Key,
            Route::Edit | Route::Retract => Access::Own,
            Route::Delete | Route::Mute => Access::Moderator,
        }
    }
}

/// A path as the table matches it.
#[derive(Debug, Clone, Copy)]
pub enum Pattern {
    /// This path exactly.
    Exact(&'static str),
    /// `<prefix><one segment>`: the segment is the route's parameter.
    Segment(&'static str),
    /// `<prefix><one segment><suffix>`.
    Between(&'static str, &'static str),
    /// One of the page's files other than the page itself.
    Asset,
}

impl Pattern {
    /// The parameter, if `path` matches.
    fn matches(self, path: &str) -> Option<&str> {
        fn one(s: &str) -> Option<&str> {
            (!s.is_empty() && !s.contains('/')).then_some(s)
        }
        match self {
            Pattern::Exact(p) => (path == p).then_some(""),
            Pattern::Segment(prefix) => path.strip_prefix(prefix).and_then(one),
            Pattern::Between(prefix, suffix) => path
                .strip_prefix(prefix)
                .and_then(|rest| rest.strip_suffix(suffix))
                .and_then(one),
            Pattern::Asset => assets::lookup(path)
                .filter(|_| !matches!(path, "/" | "/index.html"))
                .map(|_| ""),
        }
    }
}

const GET: &[Method] = &[Method::Get, Method::Head];

/// Every route: the methods, the path, the route. The table is the whole surface:
/// anything else is `404`.
pub const TABLE: &[(&[Method], Pattern, Route)] = &[
    (GET, Pattern::Exact("/"), Route::Page),
    (GET, Pattern::Exact("/index.html"), Route::Page),
    (&[Method::Get], Pattern::Exact("/events"), Route::Events),
    (&[Method::Post], Pattern::Exact("/message"), Route::Post),
    (&[Method::Get], Pattern::Exact("/messages"), Route::Older),
    (GET, Pattern::Exact("/recent"), Route::Recent),
    (GET, Pattern::Exact("/ping"), Route::Ping),
    (GET, Pattern::Exact("/limits"), Route::Limits),
    (GET, Pattern::Segment("/media/"), Route::Media),
    (
        &[Method::Delete],
        Pattern::Segment("/message/"),
        Route::Delete,
    ),
    (
        &[Method::Post],
        Pattern::Between("/message/", "/mute"),
        Route::Mute,
    ),
    (
        &[Method::Post],
        Pattern::Between("/message/", "/react"),
        Route::React,
    ),
    (
        &[Method::Post],
        Pattern::Between("/message/", "/edit"),
        Route::Edit,
    ),
    (
        &[Method::Post],
        Pattern::Between("/message/", "/delete"),
        Route::Retract,
    ),
    (&[Method::Post], Pattern::Exact("/portal"), Route::Portal),
    (GET, Pattern::Asset, Route::Asset),
];

/// The route for a method and path, with its parameter; or why there is none.
/// `POST /portal` is a route in hotspot mode only (`portal`).
pub fn find(method: Method, path: &str, portal: bool) -> Result<(Route, &str), Error> {
    let mut allowed: Vec<Method> = Vec::new();
    for (methods, pattern, route) in TABLE {
        if *route == Route::Portal && !portal {
            continue;
        }
        if let Some(param) = pattern.matches(path) {
            if methods.contains(&method) {
                return Ok((*route, param));
            }
            for m in *methods {
                if !allowed.contains(m) {
                    allowed.push(*m);
                }
            }
        }
    }
    match allowed.as_slice() {
        [] => Err(Error::NotFound),
        [Method::Get] => Err(Error::MethodNotAllowed("GET")),
        [Method::Get, Method::Head] => Err(Error::MethodNotAllowed("GET, HEAD")),
        [Method::Post] => Err(Error::MethodNotAllowed("POST")),
        [Method::Delete] => Err(Error::MethodNotAllowed("DELETE")),
        [Method::Delete, Method::Post] => Err(Error::MethodNotAllowed("DELETE, POST")),
        _ => Err(Error::MethodNotAllowed("GET, HEAD, POST, DELETE")),
    }
}

/// Whether the client asked for JSON: a page's `fetch`, or a script. Errors are
/// then JSON too.
pub fn wants_json(req: &Request) -> bool {
    req.header(ACCEPT)
        .is_some_and(|v| v.as_str().contains("application/json"))
}

/// Answers one request: a plain function of the request and what the server shares,
/// so that it can be tested without a socket.
pub async fn handle(req: Request, peer: Peer, shared: &Shared) -> Reply {
    let json = wants_json(&req);
    if let (true, Some(local)) = (shared.config.portal, peer.local) {
        if let Some(res) = portal::foreign(&req, peer.client, local, shared) {
            return Reply::response(res);
        }
    }
    let path = req.url().path().to_string();
    let (route, param) = match find(req.method(), &path, shared.config.portal) {
        Ok(found) => found,
        Err(e) => return Reply::response(e.into_response(json)),
    };
    match access::check(&req, route, peer.client.into(), shared) {
        Ok(access::Granted::Go) => {}
        Ok(access::Granted::Remember(redirect)) => return Reply::Response(redirect),
        Err(e) => return Reply::response(e.into_response(json)),
    }
    let param = param.to_string();
    let client = peer.client.into();
    let result = match route {
        Route::Page | Route::Asset => return files::asset(&req, &path, json),
        Route::Media => return files::media(&req, &param, &shared.media, json),
        Route::Events => return chat::events(&req, &shared.registry).await,
        Route::Post => chat::post(req, peer.client, shared).await,
        Route::Older => match access::query(&req, "q") {
            Some(q) => Box::pin(conversation::search(&req, &q, shared)).await,
            None => chat::older(&req, &shared.registry, shared.config.backlog).await,
        },
        Route::Recent => Ok(chat::recent(&shared.registry).await),
        Route::Ping => Ok(chat::no_content()),
        Route::Limits => Ok(chat::limits(&shared.config)),
        // Boxed, as rare and larger than a post.
        Route::Delete => Box::pin(moderation::delete(req, &param, shared)).await,
        Route::Mute => Box::pin(moderation::mute(req, &param, shared)).await,
        Route::React | Route::Edit | Route::Retract => {
            let what = match route {
                Route::React => conversation::What::React,
                Route::Edit => conversation::What::Edit,
                _ => conversation::What::Delete,
            };
            Box::pin(conversation::change(req, &param, what, shared, client)).await
        }
        Route::Portal => portal::let_in(&req, peer.client, shared),
    };
    Reply::response(result.unwrap_or_else(|e| e.into_response(json)))
}

#[cfg(test)]
mod tests;
