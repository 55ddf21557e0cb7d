//! The flags: one table, [`FLAGS`], drives parsing and `--help` alike, so the help
//! can never drift from what is parsed; and the readers of each kind of value.

use std::fmt::Write as _;
use std::time::Duration;

use super::{Action, Config, Output, Rate};

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
    pub(super) fn env(&self) -> String {
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

pub(super) fn show_size(bytes: u64) -> String {
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

pub(super) fn duration(v: &str, min: Duration) -> Result<Duration, String> {
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
