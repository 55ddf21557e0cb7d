//! The registry as a whole: the parts together, as the run loop drives them (each
//! part's own behaviour is tested in its file).

use std::net::IpAddr;

use super::frames::ids;
use super::*;

fn options(history: usize, backlog: usize) -> Options {
    Options {
        history,
        backlog,
        queue: 4,
        heartbeat: Duration::from_secs(60),
        epoch: 77,
        store: None,
        post_rate: None,
        restored: Vec::new(),
        released: None,
    }
}

fn registry(history: usize, backlog: usize) -> Registry {
    with(options(history, backlog))
}

fn with(options: Options) -> Registry {
    let (tx, _rx) = async_channel::unbounded();
    Registry::new(options, tx)
}

fn poster() -> ClientKey {
    ClientKey::from(IpAddr::from([127, 0, 0, 2]))
}

/// The ids (or event names) of what a stream was sent, as its socket would have
/// been written.
fn written(sub: &Subscription) -> Vec<String> {
    ids(&queued(sub))
}

/// The frames queued for a stream, split as its socket would have been written.
fn queued(sub: &Subscription) -> Vec<Frame> {
    let mut out = Vec::new();
    sub.frames.write_to(&mut out).unwrap();
    let mut frames = Vec::new();
    let mut rest = &out[..];
    while let Some(at) = rest.windows(2).position(|w| w == b"\r\n") {
        let len = std::str::from_utf8(&rest[..at]).unwrap();
        let end = at + 2 + usize::from_str_radix(len, 16).unwrap() + 2;
        frames.push(Frame::from(&rest[..end]));
        rest = &rest[end..];
    }
    frames
}

/// An upload asking to be let through, from `poster()`.
fn check(cid: Option<&str>) -> PostCheck {
    PostCheck {
        client: poster(),
        by_mod: false,
        device: None,
        cid: cid.map(str::to_string),
    }
}

/// What a new page is sent first, as ids.
fn backlog(r: &Registry) -> Vec<String> {
    let replay = r
        .history
        .replay_after(None, r.ids.epoch(), r.ids.next_n(), r.backlog);
    ids(&replay)
}

/// Posts a message as the run loop does; returns what the poster is answered.
fn offer(r: &mut Registry, text: &str) -> Receiver<Published> {
    offer_cid(r, text, None)
}

fn offer_cid(r: &mut Registry, text: &str, cid: Option<&str>) -> Receiver<Published> {
    let (reply, answer) = async_channel::bounded(1);
    let mut draft = Draft::new("a", text).unwrap();
    draft.cid = cid.map(str::to_string);
    r.publish(draft, poster(), reply);
    answer
}

/// Posts `n` messages and takes their answers.
fn post(r: &mut Registry, n: usize) {
    for i in 0..n {
        offer(r, &format!("m{i}")).try_recv().unwrap().unwrap();
    }
}

/// Deletes a message as the run loop does; returns its outcome.
fn delete(r: &mut Registry, target: &str) -> Receiver<Moderated> {
    let (reply, answer) = async_channel::bounded(1);
    r.delete(target.parse().unwrap(), reply);
    answer
}

/// Waits for the history file writes under way, as the run loop does.
fn settle(r: &mut Registry) {
    while let Some(flush) = r.flush.take() {
        let (store, result) = smol::block_on(flush.task);
        r.flushed(store, result, flush.batch);
    }
}

/// A registry with a history file in a fresh directory of its own.
fn with_store(name: &str) -> (Registry, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(format!("lanchat-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let (store, _) = Store::open(&dir, 100).unwrap();
    let mut r = registry(100, 100);
    r.store = Some(store);
    (r, dir)
}

fn message(id: &str) -> Record {
    Record::Message(Message {
        id: id.into(),
        name: "a".into(),
        text: id.into(),
        time: 1,
        by_mod: false,
        cid: None,
        files: Vec::new(),
        device: None,
        written: None,
        reply: None,
        edited: None,
        deleted: false,
        reactions: Vec::new(),
    })
}

#[test]
fn what_comes_during_shutdown_is_answered_at_once() {
    let (handle, task) = new(options(10, 10));
    let ex = smol::LocalExecutor::new();
    handle.shutdown();
    // Sent behind the shutdown, before the registry has run at all.
    let late = ex.spawn({
        let handle = handle.clone();
        async move { handle.join(None).await.is_none() }
    });
    let registry = ex.spawn(task);
    let answered = smol::block_on(ex.run(async {
        registry.await;
        late.or(async {
            smol::Timer::after(Duration::from_secs(5)).await;
            false
        })
        .await
    }));
    assert!(answered, "a join sent during shutdown waited for ever");
}

#[test]
fn a_stream_opened_as_another_closes_ends_up_told_the_right_count() {
    let mut r = registry(10, 10);
    let old = r.join(None);
    r.on_time(Instant::now() + PRESENCE_DELAY);
    let new = r.join(None);
    r.leave(old.key);
    r.on_time(Instant::now() + PRESENCE_DELAY);
    let told: Vec<String> = frames::read(&queued(&new))
        .into_iter()
        .filter(|e| e.event == "presence")
        .map(|e| e.data)
        .collect();
    assert_eq!(told, [r#"{"online":1}"#]);
}

#[test]
fn posts_wait_while_most_streams_are_behind_and_go_out_when_they_catch_up() {
    let mut r = with(Options {
        queue: 64, // behind means more than 8 queued
        ..options(100, 0)
    });
    let subs: Vec<Subscription> = (0..40).map(|_| r.join(None)).collect();
    post(&mut r, 9);
    let held = offer(&mut r, "held");
    assert!(held.try_recv().is_err(), "held back while congested");
    // The streams are written: the post goes out on the next look.
    for sub in &subs {
        sub.frames.write_to(std::io::sink()).unwrap();
    }
    r.release_waiting();
    assert_eq!(held.try_recv().unwrap().unwrap().text, "held");
    for sub in &subs {
        assert_eq!(sub.frames.len(), 1);
    }
}

#[test]
fn the_registry_writes_only_while_every_stream_has_caught_up_and_nothing_waits() {
    let mut r = with(Options {
        queue: 64,
        ..options(100, 0)
    });
    assert!(r.writes_directly(), "idle");
    let sub = r.join(None);
    post(&mut r, 1); // no socket attached yet: queued, so the stream is behind
    assert!(!r.writes_directly(), "a stream has frames to write");
    sub.frames.write_to(std::io::sink()).unwrap();
    assert!(r.writes_directly());
    r.commands_waiting = 3;
    assert!(!r.writes_directly(), "more posts are already waiting");
    r.commands_waiting = 0;
    r.queue.push(
        Instant::now(),
        Job::Delete {
            target: Id { epoch: 77, n: 1 },
            reply: async_channel::bounded(1).0,
        },
    );
    assert!(!r.writes_directly(), "a job waits");
}

#[test]
fn ids_go_on_from_restored_history() {
    let restored = ["5-8", "5-9", "9-1", "9-2", "9-4", "9-5"]
        .map(message)
        .to_vec();
    let mut r = with(Options {
        restored,
        ..options(100, 100)
    });
    assert_eq!(offer(&mut r, "next").try_recv().unwrap().unwrap().id, "9-6");
}

#[test]
fn a_post_the_disk_refused_reaches_no_one_and_its_id_is_given_again() {
    let (mut r, dir) = with_store("registry");
    let sub = r.join(None);
    let first = offer(&mut r, "one");
    settle(&mut r);
    assert_eq!(first.try_recv().unwrap().unwrap().id, "77-1");

    r.store.as_mut().unwrap().fail_writes = true;
    let refused = offer(&mut r, "two");
    let also = offer(&mut r, "three"); // waits for the write under way
    settle(&mut r);
    assert_eq!(refused.try_recv().unwrap(), Err(NotPublished::NotStored));
    assert_eq!(also.try_recv().unwrap(), Err(NotPublished::NotStored));
    assert_eq!(backlog(&r), ["77-1"]);

    r.store.as_mut().unwrap().fail_writes = false;
    let again = offer(&mut r, "four");
    settle(&mut r);
    assert_eq!(again.try_recv().unwrap().unwrap().id, "77-2");
    sub.frames.write_to(std::io::sink()).unwrap();
    let (_, on_disk) = Store::open(&dir, 100).unwrap();
    let texts: Vec<&str> = on_disk
        .iter()
        .filter_map(|r| match r {
            Record::Message(m) => Some(m.text.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(texts, ["one", "four"]);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn posts_that_come_during_a_flush_share_the_next_one() {
    let (mut r, dir) = with_store("batch");
    let answers: Vec<_> = (0..6).map(|i| offer(&mut r, &format!("m{i}"))).collect();
    settle(&mut r);
    // The first went alone; the five that came while it was written, together.
    assert_eq!(r.store.as_ref().unwrap().appends, 2);
    let ids: Vec<String> = answers
        .iter()
        .map(|a| a.try_recv().unwrap().unwrap().id)
        .collect();
    assert_eq!(ids, ["77-1", "77-2", "77-3", "77-4", "77-5", "77-6"]);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_deletion_takes_the_next_id_and_reaches_every_stream_in_the_sequence() {
    let mut r = registry(10, 10);
    let sub = r.join(None);
    post(&mut r, 3);
    assert_eq!(delete(&mut r, "77-2").try_recv().unwrap(), Ok(Vec::new()));
    // Live: the deletion, in the sequence, after the three messages.
    assert_eq!(written(&sub), ["77-1", "77-2", "77-3", "delete"]);
    assert_eq!(backlog(&r), ["77-1", "77-3"], "a new page");
    post(&mut r, 1);
    assert_eq!(written(&sub), ["77-5"]);
    // Twice, unknown, or a deletion itself: nothing to delete, and no id taken.
    for target in ["77-2", "77-9", "77-4", "76-1"] {
        let refused = delete(&mut r, target).try_recv().unwrap();
        assert_eq!(refused, Err(ModerationRefused::NotFound), "{target}");
    }
    assert_eq!(r.ids.next_n(), 6);
}

#[test]
fn the_backlog_of_a_new_page_counts_messages_only() {
    let mut r = registry(10, 2);
    post(&mut r, 3);
    delete(&mut r, "77-3").try_recv().unwrap().unwrap();
    assert_eq!(backlog(&r), ["77-1", "77-2"]);
}

#[test]
fn a_mute_silences_the_sender_of_a_message_even_a_deleted_one_but_not_one_from_disk() {
    let mut r = registry(10, 10);
    let first = offer(&mut r, "spam").try_recv().unwrap().unwrap();
    let id: Id = first.id.parse().unwrap();
    delete(&mut r, &first.id).try_recv().unwrap().unwrap();
    assert_eq!(r.mute(id, Duration::from_secs(600)), Ok(Vec::new()));
    match offer(&mut r, "more").try_recv().unwrap() {
        Err(NotPublished::Muted(wait)) => assert!(wait > Duration::from_secs(590)),
        other => panic!("{other:?}"),
    }
    assert!(matches!(r.admit(check(None)), Err(NotPublished::Muted(_))));
    assert_eq!(r.mute(id, Duration::ZERO), Ok(Vec::new()), "lifted");
    assert!(offer(&mut r, "again").try_recv().unwrap().is_ok());
    // Restored from disk: the sender is not known.
    let mut restored = with(Options {
        restored: vec![message("3-1")],
        ..options(10, 10)
    });
    let minute = Duration::from_secs(60);
    let refused = restored.mute("3-1".parse().unwrap(), minute);
    assert_eq!(refused, Err(ModerationRefused::SenderUnknown));
    let refused = restored.mute("3-2".parse().unwrap(), minute);
    assert_eq!(refused, Err(ModerationRefused::NotFound));
}

#[test]
fn a_deletion_waits_for_the_disk_and_after_a_failed_write_nothing_is_deleted() {
    let (mut r, dir) = with_store("deletion");
    let sub = r.join(None);
    offer(&mut r, "one");
    settle(&mut r);
    r.store.as_mut().unwrap().fail_writes = true;
    let refused = delete(&mut r, "77-1");
    settle(&mut r);
    assert_eq!(
        refused.try_recv().unwrap(),
        Err(ModerationRefused::NotStored)
    );
    assert_eq!(backlog(&r), ["77-1"], "still there");
    r.store.as_mut().unwrap().fail_writes = false;
    let done = delete(&mut r, "77-1");
    let twice = delete(&mut r, "77-1"); // waits for the write under way
    settle(&mut r);
    assert_eq!(done.try_recv().unwrap(), Ok(Vec::new()));
    assert_eq!(twice.try_recv().unwrap(), Err(ModerationRefused::NotFound));
    assert_eq!(written(&sub), ["77-1", "delete"]);
    let (_, on_disk) = Store::open(&dir, 100).unwrap();
    let on_disk: Vec<&str> = on_disk.iter().map(Record::id).collect();
    assert_eq!(
        on_disk,
        ["77-2"],
        "the deletion, the same id it was sent with"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_post_sent_again_is_answered_with_the_message_it_already_is() {
    let mut r = registry(3, 3);
    let sub = r.join(None);
    let first = offer_cid(&mut r, "hi", Some("c1"))
        .try_recv()
        .unwrap()
        .unwrap();
    assert_eq!(
        r.admit(check(Some("c1"))),
        Ok(true),
        "known before its files"
    );
    let again = offer_cid(&mut r, "hi", Some("c1"))
        .try_recv()
        .unwrap()
        .unwrap();
    assert_eq!(again, first);
    assert_eq!(written(&sub), [first.id.as_str()], "sent once");
    // Once it has left history, the cid is forgotten with it.
    post(&mut r, 3);
    assert_eq!(r.admit(check(Some("c1"))), Ok(false));
    let later = offer_cid(&mut r, "hi", Some("c1"))
        .try_recv()
        .unwrap()
        .unwrap();
    assert_ne!(later.id, first.id);
}

#[test]
fn a_post_sent_again_while_the_first_is_written_waits_for_that_write() {
    let (mut r, dir) = with_store("cid");
    let sub = r.join(None);
    let first = offer_cid(&mut r, "hi", Some("c1"));
    let other = offer(&mut r, "other");
    let again = offer_cid(&mut r, "hi", Some("c1"));
    settle(&mut r);
    let first = first.try_recv().unwrap().unwrap();
    assert_eq!(again.try_recv().unwrap().unwrap(), first);
    assert_eq!(other.try_recv().unwrap().unwrap().id, "77-2");
    assert_eq!(written(&sub), ["77-1", "77-2"]);
    // After a restart, from the file.
    drop(r);
    let (store, restored) = Store::open(&dir, 100).unwrap();
    let mut r = with(Options {
        restored,
        ..options(100, 100)
    });
    r.store = Some(store);
    let after = offer_cid(&mut r, "hi", Some("c1"));
    settle(&mut r);
    assert_eq!(after.try_recv().unwrap().unwrap(), first);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_message_that_waited_in_its_outbox_keeps_when_it_was_written() {
    let mut r = registry(10, 10);
    let send = |r: &mut Registry, waited: u64| {
        let (reply, answer) = async_channel::bounded(1);
        let mut draft = Draft::new("a", "late").unwrap();
        draft.sent = Some(5_000_000);
        draft.written = Some(5_000_000 - waited);
        r.publish(draft, poster(), reply);
        answer.try_recv().unwrap().unwrap()
    };
    let late = send(&mut r, 70_000);
    assert_eq!(late.written, Some(late.time - 70_000), "70 s in the outbox");
    assert_eq!(
        send(&mut r, 30_000).written,
        None,
        "under a minute is on time"
    );
    let ancient = send(&mut r, 5_000_000);
    assert_eq!(ancient.written, Some(ancient.time - 5_000_000));
    // Typed after it was sent: a clock that moved; no written time.
    let (reply, answer) = async_channel::bounded(1);
    let mut draft = Draft::new("a", "odd").unwrap();
    (draft.sent, draft.written) = (Some(1_000), Some(9_000));
    r.publish(draft, poster(), reply);
    assert_eq!(answer.try_recv().unwrap().unwrap().written, None);
}

#[test]
fn the_files_of_a_message_that_leaves_history_are_handed_on_to_be_removed() {
    let (released, gone) = async_channel::unbounded();
    let mut r = with(Options {
        released: Some(released),
        ..options(2, 2)
    });
    let mut draft = Draft::new("a", "photo").unwrap();
    draft.files = vec![crate::media::FileInfo {
        id: "a".repeat(32),
        name: "p.jpg".into(),
        kind: "image/jpeg".into(),
        size: 1,
        width: None,
        height: None,
    }];
    let (reply, answer) = async_channel::bounded(1);
    r.publish(draft, poster(), reply);
    answer.try_recv().unwrap().unwrap();
    post(&mut r, 1);
    assert!(gone.try_recv().is_err(), "still in history");
    post(&mut r, 1);
    assert_eq!(gone.try_recv().unwrap(), ["a".repeat(32)]);
}

/// A device's change, as the run loop takes it; returns its outcome.
fn act(r: &mut Registry, target: &str, device: &str, act: Act) -> Receiver<Acted> {
    let (reply, answer) = async_channel::bounded(1);
    r.act(target.parse().unwrap(), device.into(), act, poster(), reply);
    answer
}

fn thumbs(on: bool, name: &str) -> Act {
    Act::React {
        emoji: crate::message::REACTIONS[0].into(),
        on,
        name: name.into(),
    }
}

/// Posts `text` from `device`, replying to `reply`; returns its id.
fn post_from(r: &mut Registry, device: &str, text: &str, reply: Option<&str>) -> String {
    let (tx, answer) = async_channel::bounded(1);
    let mut draft = Draft::new(device, text).unwrap();
    draft.device = Some(device.into());
    draft.reply = reply.map(|id| id.parse().unwrap());
    r.publish(draft, poster(), tx);
    settle(r);
    answer.try_recv().unwrap().unwrap().id
}

/// Every message as a new page would show it: id, text, deleted, edited,
/// thumbs-up devices, what its reply quotes.
fn standing(r: &Registry) -> Vec<String> {
    r.history
        .recent(None, 100)
        .into_iter()
        .map(|m| {
            let thumbs: Vec<String> = m
                .reactions
                .iter()
                .flat_map(|g| {
                    g.by.iter()
                        .map(|b| format!("{}{}", g.emoji.len(), b.device))
                })
                .collect();
            let quote = m
                .reply
                .map(|q| format!("<{}:{}{}", q.id, q.text, if q.gone { " gone" } else { "" }));
            format!(
                "{} {:?}{}{} {:?} {}",
                m.id,
                m.text,
                if m.deleted { " deleted" } else { "" },
                if m.edited.is_some() { " edited" } else { "" },
                thumbs,
                quote.unwrap_or_default()
            )
        })
        .collect()
}

#[test]
fn every_kind_of_change_is_one_record_and_reads_back_the_same_after_a_restart_and_a_compaction() {
    let (mut r, dir) = with_store("changes");
    r.subscribers = Subscribers::new(64);
    let sub = r.join(None);
    let ana = post_from(&mut r, "ana", "wifi is Tür-7", None);
    let bo = post_from(&mut r, "bo", "thanks", Some(&ana));
    let gone = post_from(&mut r, "cy", "oops wrong chat", None);
    let reply_to_gone = post_from(&mut r, "bo", "what?", Some(&gone));
    // Three devices react, one takes it back, and one taps twice.
    for (device, on) in [
        ("bo", true),
        ("cy", true),
        ("dee", true),
        ("cy", false),
        ("bo", true),
    ] {
        let done = act(&mut r, &ana, device, thumbs(on, device));
        settle(&mut r);
        assert!(done.try_recv().unwrap().is_ok());
    }
    // Ana fixes her message; Bo cannot; Cy takes hers back; Bo cannot react to it.
    let edit = act(
        &mut r,
        &ana,
        "ana",
        Act::Edit {
            text: "wifi is Tür-8".into(),
        },
    );
    let stolen = act(
        &mut r,
        &ana,
        "bo",
        Act::Edit {
            text: "mine".into(),
        },
    );
    let retract = act(&mut r, &gone, "cy", Act::Delete);
    settle(&mut r);
    assert_eq!(
        edit.try_recv().unwrap().unwrap().message.text,
        "wifi is Tür-8"
    );
    assert_eq!(
        stolen.try_recv().unwrap(),
        Err(ActRefused::Refused(Refused::NotYours))
    );
    assert!(retract.try_recv().unwrap().unwrap().message.deleted);
    let late = act(&mut r, &gone, "bo", thumbs(true, "bo"));
    settle(&mut r);
    assert_eq!(
        late.try_recv().unwrap(),
        Err(ActRefused::Refused(Refused::NotFound))
    );
    let mut expected = vec![
        format!("{ana} \"wifi is Tür-8\" edited [\"4bo\", \"4dee\"] "),
        format!("{bo} \"thanks\" [] <{ana}:wifi is Tür-8"),
        format!("{gone} \"\" deleted [] "),
        format!("{reply_to_gone} \"what?\" [] <{gone}: gone"),
    ];
    assert_eq!(standing(&r), expected);
    // The stream had every message and got each change once, in order.
    let seen = written(&sub);
    let kinds: Vec<&str> = seen
        .iter()
        .map(|e| {
            if e.contains('-') {
                "message"
            } else {
                e.as_str()
            }
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "message", "message", "message", "message", "react", "react", "react", "react", "edit",
            "delete"
        ]
    );
    // A page that saw everything up to Bo's reply is sent what came after, once.
    let after = r
        .history
        .replay_after(Some(&reply_to_gone), 77, r.ids.next_n(), 100);
    assert_eq!(
        ids(&after),
        ["react", "react", "react", "react", "edit", "delete"]
    );
    // One that saw only Ana's is sent the rest as it stands, and the changes to
    // hers, not the reactions or edits of messages it never had (a deletion goes to
    // every page that comes back from before it, as deletions always did).
    let late = act(&mut r, &bo, "dee", thumbs(true, "dee"));
    settle(&mut r);
    assert!(late.try_recv().unwrap().is_ok());
    let after = r.history.replay_after(Some(&ana), 77, r.ids.next_n(), 100);
    let expected_after = [
        bo.as_str(),
        &gone,
        &reply_to_gone,
        "react",
        "react",
        "react",
        "react",
        "edit",
        "delete",
    ];
    assert_eq!(ids(&after), expected_after);
    expected[1] = format!("{bo} \"thanks\" [\"4dee\"] <{ana}:wifi is Tür-8");
    // A new page gets the messages as they stand, not the changes.
    assert_eq!(backlog(&r).len(), 4);

    let restart = |keep| {
        let (_, records) = Store::open(&dir, keep).unwrap();
        let mut o = options(keep, keep);
        o.restored = records;
        with(o)
    };
    let again = restart(100);
    assert_eq!(standing(&again), expected, "after a restart");
    // A page that had seen Bo's reply before the restart is owed the same.
    let after = again
        .history
        .replay_after(Some(&reply_to_gone), 77, again.ids.next_n(), 100);
    assert_eq!(
        ids(&after),
        ["react", "react", "react", "react", "edit", "delete", "react"]
    );
    // The deleted message's text is gone from the file.
    let file = std::fs::read_to_string(dir.join(crate::store::FILE_NAME)).unwrap();
    assert!(!file.contains("oops"), "{file}");
    // Compacted to the newest three messages, what is kept reads the same.
    assert_eq!(standing(&restart(3)), expected[1..]);
    assert_eq!(standing(&restart(3)), expected[1..], "after the compaction");
    // With two, the eight newest records (four a message) hold one message only.
    assert_eq!(standing(&restart(2)), expected[3..]);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn changes_count_against_the_post_rate_and_a_mute() {
    let mut o = options(100, 100);
    o.post_rate = Some(crate::config::Rate {
        burst: 2,
        every: Duration::from_secs(60),
    });
    let mut r = with(o);
    post(&mut r, 1);
    let first = r.history.recent(None, 1)[0].id.clone();
    assert!(act(&mut r, &first, "d", thumbs(true, "x"))
        .try_recv()
        .unwrap()
        .is_ok());
    assert!(matches!(
        act(&mut r, &first, "d", thumbs(false, "x"))
            .try_recv()
            .unwrap(),
        Err(ActRefused::Limited(_))
    ));
}

#[test]
fn a_search_goes_back_in_steps_and_finds_the_newest_first() {
    let mut r = registry(10_000, 10);
    for i in 0..5000 {
        let text = if i % 1000 == 7 {
            format!("The WiFi {i}")
        } else {
            format!("m{i}")
        };
        offer(&mut r, &text).try_recv().unwrap().unwrap();
    }
    let words = crate::search::words("wifi");
    let step = r.history.search(&words, None, 2000, 50);
    let texts: Vec<&str> = step.messages.iter().map(|m| m.text.as_str()).collect();
    assert_eq!(texts, ["The WiFi 4007", "The WiFi 3007"]);
    let rest = r.history.search(&words, step.next, 5000, 50);
    let texts: Vec<&str> = rest.messages.iter().map(|m| m.text.as_str()).collect();
    assert_eq!(texts, ["The WiFi 2007", "The WiFi 1007", "The WiFi 7"]);
    assert_eq!(rest.next, None, "all of history was looked at");
}
