//! Settings: [`Config`] with its defaults, and the command line and environment that
//! fill it. Every flag has an environment variable (`LANCHAT_<NAME>`); a flag wins
//! over its variable. One table, [`FLAGS`], drives parsing and `--help` alike, so
//! the help can never drift from what is parsed.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::time::Duration;

/// Everything the server needs to run.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where to listen. All interfaces by default: the phones are on the LAN.
    pub listen: SocketAddr,
    /// Messages kept for replay to clients that reconnect. At ~300 bytes a message,
    /// 1,000 cost well under a MiB.
    pub history: usize,
    /// Messages a new client sees first: enough to follow the conversation.
    pub backlog: usize,
    /// Frames a subscriber may have queued before it is dropped; it reconnects and
    /// catches up from history, so this bounds memory, not delivery.
    pub queue: usize,
    /// Interval between heartbeat comments: home routers drop idle TCP connections
    /// after a minute or two, and a write is how a dead client is found.
    pub heartbeat: Duration,
    /// The reconnection delay sent to browsers in `retry:`.
    pub retry: Duration,
    /// Open connections allowed at once; past it, requests get `503` (streams a
    /// `retry:`). Each open stream costs a file descriptor and a few KiB.
    pub max_connections: usize,
    /// Largest request body: by default the largest a valid message can take in any
    /// script ([`crate::message::MAX_FORM_BYTES`]).
    pub max_body: usize,
    /// Time allowed for a whole request head once its first byte has arrived.
    pub head_timeout: Duration,
    /// Time allowed for a request body, and for each read of a large one.
    pub body_timeout: Duration,
    /// The slowest a large body (a post with files) may come, on average, once
    /// `body_timeout` has passed, in bytes a second: a photo on a poor Wi-Fi link
    /// comes at tens of KiB a second, a body trickled to hold a connection far slower.
    pub body_rate: u64,
    /// How long an idle keep-alive connection is kept.
    pub idle_timeout: Duration,
    /// How long one write to a stream may make no progress before the client is
    /// taken for gone.
    pub write_timeout: Duration,
    /// Executor threads; the writing of streams spreads over them. One by default:
    /// a room of tens of phones costs least on one thread, which then keeps
    /// async-io's reactor to itself (BENCHMARKS.md, "Threads"); more only pay with
    /// thousands of streams under a flood of posts.
    pub threads: usize,
    /// Where history is kept across restarts; none by default, so nothing is
    /// written to the Pi's SD card unless asked.
    pub data_dir: Option<std::path::PathBuf>,
    /// A shared secret that the page, the stream and posting need, when set: the
    /// start-up URL and QR code carry it, and the page keeps it in a cookie.
    pub key: Option<String>,
    /// The moderator's key, when set: a browser that opened `/?mod=KEY` may delete
    /// messages and mute their senders, and its posts are marked as the host's. At
    /// least [`crate::keys::MOD_KEY_MIN`] characters.
    pub mod_key: Option<String>,
    /// `--mod-key auto`: the moderator key is made by the server (and kept in the
    /// data directory), see [`crate::keys::auto_mod_key`].
    pub mod_key_auto: bool,
    /// Posts each client address may make: a burst, then one more per interval;
    /// `None` (`off`) for none. Enough for anyone typing; a flood is slowed.
    pub post_rate: Option<Rate>,
    /// The largest file one upload may carry: a photo from a phone, or a PDF.
    pub max_upload: u64,
    /// Bytes of files kept, the oldest going first; `None`: 1 GiB with
    /// `--data-dir`, 64 MiB in memory without.
    pub media_quota: Option<u64>,
    /// The cost of one client address's files, its oldest going first; `None`: an
    /// eighth of the quota, and at least `max_upload`, so that one phone cannot push
    /// everyone else's photos out.
    pub media_share: Option<u64>,
    /// Bytes the disk under `--data-dir` keeps free: files never take them, so the
    /// history always has room to grow (its largest file is a few MiB).
    pub min_free: u64,
    /// Hotspot mode: requests for other sites are answered as a captive portal
    /// that leads to the chat (see [`crate::portal`]).
    pub portal: bool,
    /// Open connections one client address may hold: a browser needs a handful,
    /// so one script cannot take every slot from everyone else.
    pub max_per_client: usize,
}

/// A token bucket: `burst` at once, then one more every `every`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    /// Posts allowed at once.
    pub burst: u32,
    /// The time in which one more is allowed.
    pub every: Duration,
}

impl std::fmt::Display for Rate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ms = self.every.as_millis();
        if ms % 1000 == 0 {
            write!(f, "{}/{}s", self.burst, ms / 1000)
        } else {
            write!(f, "{}/{ms}ms", self.burst)
        }
    }
}

impl Config {
    /// The limits of the files kept, with the defaults worked out.
    pub fn media_limits(&self) -> crate::media::Limits {
        let quota = self
            .media_quota
            .unwrap_or(match self.data_dir {
                Some(_) => 1 << 30,
                None => 64 << 20,
            })
            .max(self.max_upload);
        let share = self.media_share.unwrap_or(quota / 8).max(self.max_upload);
        crate::media::Limits {
            quota,
            share: share.min(quota),
            floor: self.min_free,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([0, 0, 0, 0], 3000)),
            history: 1_000,
            backlog: 100,
            queue: 256,
            heartbeat: Duration::from_secs(15),
            retry: Duration::from_millis(2_000),
            max_connections: 10_000,
            max_body: crate::message::MAX_FORM_BYTES,
            head_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(10),
            body_rate: 4 << 10,
            idle_timeout: Duration::from_secs(60),
            write_timeout: Duration::from_secs(30),
            threads: 1,
            data_dir: None,
            key: None,
            mod_key: None,
            mod_key_auto: false,
            portal: false,
            max_upload: 16 << 20,
            media_quota: None,
            media_share: None,
            min_free: 64 << 20,
            post_rate: Some(Rate {
                burst: 20,
                every: Duration::from_secs(1),
            }),
            max_per_client: 64,
        }
    }
}

/// Settings of the binary itself, beside the server's [`Config`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    /// No start-up banner.
    pub quiet: bool,
    /// Which log lines are printed.
    pub log_level: crate::log::Level,
}

/// What the command line asks for.
#[derive(Debug)]
pub enum Action {
    /// Run the server.
    Run(Box<Config>, Output),
    /// Print the help.
    Help,
    /// Print the version.
    Version,
}

/// A flag: its name, what it sets and how it reads its value.
pub struct Flag {
    /// The long name, without `--`.
    pub name: &'static str,
    /// Placeholder for the value in `--help`; empty for a switch.
    pub value: &'static str,
    /// One line for `--help`.
    pub help: &'static str,
    set: fn(&mut Config, &mut Output, &str) -> Result<(), String>,
    default: fn(&Config, &Output) -> String,
}

/// Every flag, in `--help` order.
pub const FLAGS: &[Flag] = &[
    Flag {
        name: "listen",
        value: "ADDR:PORT",
        help: "address and port to listen on",
        set: |c, _, v| {
            c.listen = v
                .parse()
                .map_err(|_| format!("'{v}' is not an address and port such as 0.0.0.0:3000"))?;
            Ok(())
        },
        default: |c, _| c.listen.to_string(),
    },
    Flag {
        name: "history",
        value: "N",
        help: "messages kept for clients that reconnect",
        set: |c, _, v| number(v, 0, 1_000_000).map(|n| c.history = n),
        default: |c, _| c.history.to_string(),
    },
    Flag {
        name: "backlog",
        value: "N",
        help: "recent messages a newly opened page is shown",
        set: |c, _, v| number(v, 0, 1_000_000).map(|n| c.backlog = n),
        default: |c, _| c.backlog.to_string(),
    },
    Flag {
        name: "queue",
        value: "N",
        help: "events queued for a slow client before it is made to reconnect",
        set: |c, _, v| number(v, 1, 1_000_000).map(|n| c.queue = n),
        default: |c, _| c.queue.to_string(),
    },
    Flag {
        name: "heartbeat",
        value: "TIME",
        help: "interval between keep-alive comments on every stream",
        set: |c, _, v| duration(v, Duration::from_millis(10)).map(|d| c.heartbeat = d),
        default: |c, _| show_duration(c.heartbeat),
    },
    Flag {
        name: "retry",
        value: "TIME",
        help: "how long browsers wait before they reconnect",
        set: |c, _, v| duration(v, Duration::ZERO).map(|d| c.retry = d),
        default: |c, _| show_duration(c.retry),
    },
    Flag {
        name: "data-dir",
        value: "DIR",
        help: "keep history in DIR so it survives a restart",
        set: |c, _, v| {
            c.data_dir = (!v.trim().is_empty()).then(|| v.trim().into());
            Ok(())
        },
        default: |c, _| {
            c.data_dir
                .as_ref()
                .map_or("none".into(), |d| d.display().to_string())
        },
    },
    Flag {
        name: "key",
        value: "KEY",
        help: "access key the page, stream and posts need (in the URL and QR code)",
        set: |c, _, v| secret(v, "LANCHAT_KEY").map(|k| c.key = Some(k)),
        // Never the key itself: --help output ends up in terminals and bug reports.
        default: |c, _| (if c.key.is_some() { "set" } else { "none" }).into(),
    },
    Flag {
        name: "mod-key",
        value: "KEY",
        help: "moderator key (8 or more characters, or auto): open /?mod=KEY to delete messages and mute senders",
        set: |c, _, v| {
            if v.trim() == "auto" {
                c.mod_key = None;
                c.mod_key_auto = true;
                return Ok(());
            }
            let key = secret(v, "LANCHAT_MOD_KEY")?;
            if key.len() < crate::keys::MOD_KEY_MIN {
                return Err(format!(
                    "the moderator key must have at least {} characters (it opens the host's \
                     powers), or be auto to have one made; got {}",
                    crate::keys::MOD_KEY_MIN,
                    key.len()
                ));
            }
            c.mod_key = Some(key);
            c.mod_key_auto = false;
            Ok(())
        },
        default: |c, _| {
            let shown = match (&c.mod_key, c.mod_key_auto) {
                (_, true) => "auto",
                (Some(_), false) => "set",
                (None, false) => "none",
            };
            shown.into()
        },
    },
    Flag {
        name: "max-upload",
        value: "SIZE",
        help: "largest file one upload may carry (413 past it)",
        set: |c, _, v| size(v, 1 << 10, 1 << 32).map(|n| c.max_upload = n),
        default: |c, _| show_size(c.max_upload),
    },
    Flag {
        name: "media-quota",
        value: "SIZE",
        help: "files kept, the oldest go first (default: 1GiB with --data-dir, 64MiB without)",
        set: |c, _, v| size(v, 1 << 20, 1 << 44).map(|n| c.media_quota = Some(n)),
        default: |c, _| c.media_quota.map_or("auto".into(), show_size),
    },
    Flag {
        name: "media-share",
        value: "SIZE",
        help: "files one client address may have kept, its oldest go first (default: an eighth of the quota)",
        set: |c, _, v| size(v, 1 << 20, 1 << 44).map(|n| c.media_share = Some(n)),
        default: |c, _| c.media_share.map_or("auto".into(), show_size),
    },
    Flag {
        name: "min-free",
        value: "SIZE",
        help: "space the disk under --data-dir keeps free for the history; files never take it",
        set: |c, _, v| size(v, 0, 1 << 44).map(|n| c.min_free = n),
        default: |c, _| show_size(c.min_free),
    },
    Flag {
        name: "portal",
        value: "",
        help: "hotspot mode: every other site leads to the chat (a captive portal)",
        set: |c, _, v| boolean(v).map(|b| c.portal = b),
        default: |c, _| c.portal.to_string(),
    },
    Flag {
        name: "max-connections",
        value: "N",
        help: "open connections allowed at once (503 past it)",
        set: |c, _, v| number(v, 1, 10_000_000).map(|n| c.max_connections = n),
        default: |c, _| c.max_connections.to_string(),
    },
    Flag {
        name: "max-per-client",
        value: "N",
        help: "open connections one client address may hold (503 past it)",
        set: |c, _, v| number(v, 1, 10_000_000).map(|n| c.max_per_client = n),
        default: |c, _| c.max_per_client.to_string(),
    },
    Flag {
        name: "post-rate",
        value: "N/TIME",
        help: "posts per client address: a burst of N, then one per TIME (429 past it), or off",
        set: |c, _, v| {
            let v = v.trim();
            if v.eq_ignore_ascii_case("off") {
                c.post_rate = None;
                return Ok(());
            }
            let (burst, every) = v
                .split_once('/')
                .ok_or_else(|| format!("'{v}' is not a rate such as 20/1s, or off"))?;
            let burst = number(burst, 1, 1_000_000)? as u32;
            let every = duration(every, Duration::from_millis(1))?;
            c.post_rate = Some(Rate { burst, every });
            Ok(())
        },
        default: |c, _| c.post_rate.map_or("off".into(), |r| r.to_string()),
    },
    Flag {
        name: "max-body",
        value: "BYTES",
        help: "largest request body accepted (413 past it)",
        set: |c, _, v| number(v, 64, 1 << 30).map(|n| c.max_body = n),
        default: |c, _| c.max_body.to_string(),
    },
    Flag {
        name: "head-timeout",
        value: "TIME",
        help: "time allowed for a request head",
        set: |c, _, v| duration(v, Duration::from_millis(10)).map(|d| c.head_timeout = d),
        default: |c, _| show_duration(c.head_timeout),
    },
    Flag {
        name: "body-timeout",
        value: "TIME",
        help: "time allowed for a request body (408 past it)",
        set: |c, _, v| duration(v, Duration::from_millis(10)).map(|d| c.body_timeout = d),
        default: |c, _| show_duration(c.body_timeout),
    },
    Flag {
        name: "body-rate",
        value: "SIZE",
        help: "slowest average rate of an upload after --body-timeout, per second (408 past it)",
        set: |c, _, v| size(v, 1, 1 << 30).map(|n| c.body_rate = n),
        default: |c, _| show_size(c.body_rate),
    },
    Flag {
        name: "idle-timeout",
        value: "TIME",
        help: "how long an idle keep-alive connection is kept",
        set: |c, _, v| duration(v, Duration::from_millis(10)).map(|d| c.idle_timeout = d),
        default: |c, _| show_duration(c.idle_timeout),
    },
    Flag {
        name: "write-timeout",
        value: "TIME",
        help: "how long a stream write may stall before the client is dropped",
        set: |c, _, v| duration(v, Duration::from_millis(10)).map(|d| c.write_timeout = d),
        default: |c, _| show_duration(c.write_timeout),
    },
    Flag {
        name: "threads",
        value: "N",
        help: "executor threads; more help only thousands of streams (default 1)",
        set: |c, _, v| number(v, 1, 256).map(|n| c.threads = n),
        default: |c, _| c.threads.to_string(),
    },
    Flag {
        name: "log-level",
        value: "LEVEL",
        help: "error, warn, info or debug",
        set: |_, o, v| {
            o.log_level = v
                .parse()
                .map_err(|_| format!("'{v}' is not one of error, warn, info, debug"))?;
            Ok(())
        },
        default: |_, o| o.log_level.to_string(),
    },
    Flag {
        name: "quiet",
        value: "",
        help: "no start-up banner",
        set: |_, o, v| boolean(v).map(|b| o.quiet = b),
        default: |_, o| o.quiet.to_string(),
    },
];

impl Flag {
    fn env(&self) -> String {
        format!("LANCHAT_{}", self.name.to_uppercase().replace('-', "_"))
    }
}

/// Reads the command line (without the program name) and the environment.
/// The error is one line that says what to fix.
pub fn parse<I, E>(args: I, env: E) -> Result<Action, String>
where
    I: IntoIterator<Item = String>,
    E: Fn(&str) -> Option<String>,
{
    let mut config = Config::default();
    let mut output = Output {
        quiet: false,
        log_level: crate::log::Level::Info,
    };
    for flag in FLAGS {
        let var = flag.env();
        if let Some(value) = env(&var) {
            (flag.set)(&mut config, &mut output, &value).map_err(|e| format!("{var}: {e}"))?;
        }
    }
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "-h" | "--help" => return Ok(Action::Help),
            "-V" | "--version" => return Ok(Action::Version),
            _ => {}
        }
        let Some(long) = arg.strip_prefix("--") else {
            return Err(format!("unexpected argument '{arg}' (see --help)"));
        };
        let (name, inline) = match long.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (long, None),
        };
        let flag = FLAGS
            .iter()
            .find(|f| f.name == name)
            .ok_or_else(|| format!("unknown flag '--{name}' (see --help)"))?;
        let value = match (inline, flag.value.is_empty()) {
            (Some(v), _) => v,
            (None, true) => "true".to_string(),
            (None, false) => args
                .next()
                .ok_or_else(|| format!("--{name} needs a value ({})", flag.value))?,
        };
        (flag.set)(&mut config, &mut output, &value).map_err(|e| format!("--{name}: {e}"))?;
    }
    if config.backlog > config.history {
        config.backlog = config.history;
    }
    if config.media_quota.is_some_and(|q| q < config.max_upload) {
        return Err(format!(
            "--media-quota {} is smaller than --max-upload {}: the largest file must fit",
            show_size(config.media_quota.unwrap_or(0)),
            show_size(config.max_upload)
        ));
    }
    if config.media_share.is_some_and(|q| q < config.max_upload) {
        return Err(format!(
            "--media-share {} is smaller than --max-upload {}: the largest file must fit",
            show_size(config.media_share.unwrap_or(0)),
            show_size(config.max_upload)
        ));
    }
    if config.mod_key.is_some() && config.mod_key == config.key {
        return Err(
            "--mod-key: the moderator key must differ from --key, which everyone \
                    who scans the QR code has"
                .into(),
        );
    }
    Ok(Action::Run(Box::new(config), output))
}

/// The text of `--help`, with every default and variable.
pub fn help() -> String {
    let config = Config::default();
    let output = Output {
        quiet: false,
        log_level: crate::log::Level::Info,
    };
    let mut out = format!(
        "lanchat {}: a chat for the phones on your network\n\n\
         Usage: lanchat [FLAGS]\n\n\
         Every flag can also be set by the environment variable shown.\n\
         TIME is a number with ms, s or m (a bare number is seconds).\n\n",
        env!("CARGO_PKG_VERSION")
    );
    for flag in FLAGS {
        let left = if flag.value.is_empty() {
            format!("--{}", flag.name)
        } else {
            format!("--{} {}", flag.name, flag.value)
        };
        let _ = writeln!(out, "  {left:<26} {}", flag.help);
        let _ = writeln!(
            out,
            "  {:<26} [default: {}] [env: {}]",
            "",
            (flag.default)(&config, &output),
            flag.env()
        );
    }
    out.push_str(
        "  -h, --help                 this help\n  -V, --version              the version\n",
    );
    out
}

/// A key as `--key` and `--mod-key` take it.
fn secret(v: &str, var: &str) -> Result<String, String> {
    let v = v.trim();
    let fine = |b: u8| b.is_ascii_alphanumeric() || b"-_.~".contains(&b);
    if v.is_empty() {
        // Most likely a variable that was meant to be set and is not: going without
        // a key must be chosen by leaving it out, not by accident.
        Err(format!(
            "the key is empty: give a key, or leave the flag and {var} out to go without one"
        ))
    } else if v.len() > 128 || !v.bytes().all(fine) {
        Err(format!(
            "the key may have up to 128 letters, digits, '-', '_', '.' and '~', \
             so that it fits in a URL as it is; got {} characters",
            v.chars().count()
        ))
    } else {
        Ok(v.to_string())
    }
}

/// A size in bytes: a number with KiB, MiB or GiB (or K, M, G; a bare number is
/// bytes).
fn size(v: &str, min: u64, max: u64) -> Result<u64, String> {
    let t = v.trim();
    let digits_end = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(digits_end);
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("'{v}' is not a size such as 16MiB or 1GiB"))?;
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kib" | "kb" => 10,
        "m" | "mib" | "mb" => 20,
        "g" | "gib" | "gb" => 30,
        _ => return Err(format!("'{v}' is not a size such as 16MiB or 1GiB")),
    };
    let bytes = n.checked_shl(shift).filter(|b| b >> shift == n);
    match bytes {
        Some(b) if (min..=max).contains(&b) => Ok(b),
        _ => Err(format!(
            "'{v}' is out of range ({} to {})",
            show_size(min),
            show_size(max)
        )),
    }
}

fn show_size(bytes: u64) -> String {
    for (shift, unit) in [(30, "GiB"), (20, "MiB"), (10, "KiB")] {
        if bytes >= 1 << shift && bytes % (1 << shift) == 0 {
            return format!("{}{unit}", bytes >> shift);
        }
    }
    format!("{bytes}")
}

fn number(v: &str, min: usize, max: usize) -> Result<usize, String> {
    let n: usize = v
        .trim()
        .replace('_', "")
        .parse()
        .map_err(|_| format!("'{v}' is not a whole number"))?;
    if n < min || n > max {
        return Err(format!("{n} is out of range ({min} to {max})"));
    }
    Ok(n)
}

fn duration(v: &str, min: Duration) -> Result<Duration, String> {
    let v = v.trim();
    let (digits, unit) = v.split_at(v.find(|c: char| !c.is_ascii_digit()).unwrap_or(v.len()));
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("'{v}' is not a time such as 500ms, 15s or 2m"))?;
    let d = match unit {
        "ms" => Duration::from_millis(n),
        "" | "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n.saturating_mul(60)),
        _ => return Err(format!("'{v}' is not a time such as 500ms, 15s or 2m")),
    };
    if d < min || d > Duration::from_secs(24 * 3600) {
        return Err(format!(
            "'{v}' is out of range ({} to 24h)",
            show_duration(min)
        ));
    }
    Ok(d)
}

fn show_duration(d: Duration) -> String {
    if d.subsec_millis() != 0 || d.is_zero() {
        format!("{}ms", d.as_millis())
    } else {
        format!("{}s", d.as_secs())
    }
}

fn boolean(v: &str) -> Result<bool, String> {
    match v.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" | "" => Ok(false),
        _ => Err(format!("'{v}' is not true or false")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &[&str], env: &[(&str, &str)]) -> Result<(Config, Output), String> {
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let action = parse(args.iter().map(|s| s.to_string()), |k| {
            env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
        })?;
        match action {
            Action::Run(c, o) => Ok((*c, o)),
            other => panic!("expected Run, got {other:?}"),
        }
    }

    #[test]
    fn defaults_match_the_design() {
        let (c, o) = run(&[], &[]).unwrap();
        assert_eq!(c.listen.to_string(), "0.0.0.0:3000");
        assert_eq!((c.history, c.backlog, c.queue), (1000, 100, 256));
        assert_eq!(c.heartbeat, Duration::from_secs(15));
        assert_eq!(c.retry, Duration::from_millis(2000));
        assert_eq!(
            (c.max_connections, c.max_body),
            (10_000, crate::message::MAX_FORM_BYTES)
        );
        assert!(!o.quiet);
    }

    #[test]
    fn flags_in_both_forms_and_switches() {
        let (c, o) = run(
            &["--listen", "127.0.0.1:8080", "--heartbeat=500ms", "--quiet"],
            &[],
        )
        .unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(c.heartbeat, Duration::from_millis(500));
        assert!(o.quiet);
    }

    #[test]
    fn environment_fills_in_and_flags_win() {
        let env = [("LANCHAT_LISTEN", "127.0.0.1:1"), ("LANCHAT_HISTORY", "50")];
        let (c, _) = run(&[], &env).unwrap();
        assert_eq!((c.listen.port(), c.history), (1, 50));
        let (c, _) = run(&["--listen", "127.0.0.1:2"], &env).unwrap();
        assert_eq!(c.listen.port(), 2);
    }

    #[test]
    fn errors_say_what_to_fix() {
        let e = run(&["--listen", "nope"], &[]).unwrap_err();
        assert!(e.starts_with("--listen: 'nope' is not an address"), "{e}");
        let e = run(&["--history"], &[]).unwrap_err();
        assert_eq!(e, "--history needs a value (N)");
        let e = run(&["--bogus"], &[]).unwrap_err();
        assert_eq!(e, "unknown flag '--bogus' (see --help)");
        let e = run(&[], &[("LANCHAT_HEARTBEAT", "soon")]).unwrap_err();
        assert!(
            e.starts_with("LANCHAT_HEARTBEAT: 'soon' is not a time"),
            "{e}"
        );
        let e = run(&["--queue", "0"], &[]).unwrap_err();
        assert!(e.contains("out of range"), "{e}");
        assert!(!e.contains('\n'));
    }

    #[test]
    fn the_key_must_fit_a_url_and_is_never_shown() {
        let (c, _) = run(&[], &[("LANCHAT_KEY", "tea-time_42")]).unwrap();
        assert_eq!(c.key.as_deref(), Some("tea-time_42"));
        let e = run(&["--key", "a b&c"], &[]).unwrap_err();
        assert!(e.starts_with("--key: the key may have"), "{e}");
        assert!(!e.contains("a b&c"), "the error does not echo the secret");
        assert!(run(&["--key", &"k".repeat(129)], &[]).is_err());
        for empty in ["", "  "] {
            let e = run(&["--key", empty], &[]).unwrap_err();
            assert!(e.starts_with("--key: the key is empty"), "{e}");
            let e = run(&[], &[("LANCHAT_KEY", empty)]).unwrap_err();
            assert!(e.starts_with("LANCHAT_KEY: the key is empty"), "{e}");
        }
    }

    #[test]
    fn the_moderator_key_is_a_key_of_its_own() {
        let (c, _) = run(&["--key", "open", "--mod-key", "host-only"], &[]).unwrap();
        assert_eq!(c.mod_key.as_deref(), Some("host-only"));
        let (c, _) = run(&[], &[("LANCHAT_MOD_KEY", "moderate")]).unwrap();
        assert_eq!(c.mod_key.as_deref(), Some("moderate"));
        let e = run(&["--mod-key", "a/b"], &[]).unwrap_err();
        assert!(e.starts_with("--mod-key: the key may have"), "{e}");
        let e = run(&[], &[("LANCHAT_MOD_KEY", " ")]).unwrap_err();
        assert!(e.contains("LANCHAT_MOD_KEY out"), "{e}");
        let e = run(&["--key", "same-key", "--mod-key", "same-key"], &[]).unwrap_err();
        assert!(e.contains("must differ"), "{e}");
        assert!(!help().contains("host-only"));
        // Guessable in a day at a few tries a minute: refused, with what to do.
        for short in ["a", "1234567"] {
            let e = run(&["--mod-key", short], &[]).unwrap_err();
            assert!(
                e.contains("at least 8 characters") && e.contains("auto"),
                "{e}"
            );
        }
        let (c, _) = run(&["--mod-key", "auto"], &[]).unwrap();
        assert!(c.mod_key_auto && c.mod_key.is_none());
    }

    #[test]
    fn post_rates_read_as_a_burst_and_an_interval_or_off() {
        let (c, _) = run(&[], &[]).unwrap();
        assert_eq!(c.post_rate.unwrap().to_string(), "20/1s");
        let (c, _) = run(&["--post-rate", "5/250ms"], &[]).unwrap();
        let rate = c.post_rate.unwrap();
        assert_eq!((rate.burst, rate.every), (5, Duration::from_millis(250)));
        let (c, _) = run(&[], &[("LANCHAT_POST_RATE", "off")]).unwrap();
        assert!(c.post_rate.is_none());
        for bad in ["20", "0/1s", "20/", "x/1s", "20/1h"] {
            let e = run(&["--post-rate", bad], &[]).unwrap_err();
            assert!(e.starts_with("--post-rate: "), "{bad}: {e}");
        }
    }

    #[test]
    fn sizes_take_units_and_the_quota_holds_the_largest_file() {
        let (c, _) = run(&["--max-upload", "8MiB", "--media-quota", "2G"], &[]).unwrap();
        assert_eq!((c.max_upload, c.media_quota), (8 << 20, Some(2 << 30)));
        for bad in ["lots", "5TiB", "0", "-1MiB"] {
            let e = run(&["--max-upload", bad], &[]).unwrap_err();
            assert!(e.starts_with("--max-upload: "), "{bad}: {e}");
        }
        let e = run(&["--max-upload", "64MiB", "--media-quota", "32MiB"], &[]).unwrap_err();
        assert!(e.contains("--media-quota"), "{e}");
        assert_eq!(show_size(16 << 20), "16MiB");
    }

    #[test]
    fn durations_take_units() {
        assert_eq!(duration("2m", Duration::ZERO), Ok(Duration::from_secs(120)));
        assert_eq!(duration("15", Duration::ZERO), Ok(Duration::from_secs(15)));
        assert!(duration("5h", Duration::ZERO).is_err());
        assert!(duration("5ms", Duration::from_millis(10)).is_err());
    }

    #[test]
    fn help_lists_every_flag_default_and_variable() {
        let text = help();
        for flag in FLAGS {
            assert!(text.contains(&format!("--{}", flag.name)));
            assert!(text.contains(&flag.env()));
        }
        assert!(text.contains("[default: 0.0.0.0:3000] [env: LANCHAT_LISTEN]"));
    }
}
