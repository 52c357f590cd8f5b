//! The status page at `/` (issue 11), checked in a real headless browser (Debian's Chromium, which
//! `scripts/install-deps` installs): it renders, shows the flows, topics and cutover gates from
//! `/status`, and keeps itself up to date.

mod support;

use std::process::Command;
use std::time::Duration;

use support::*;

/// The page's DOM after its scripts ran for `budget_ms` of (virtual) time.
fn rendered(url: &str, budget_ms: u64) -> String {
    let browser = ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|name| {
            Command::new(name)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        })
        .expect("a headless Chromium is needed for this test: run scripts/install-deps");
    let output = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            &format!("--virtual-time-budget={budget_ms}"),
            "--dump-dom",
            url,
        ])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{browser} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// The number inside `<span id="refreshes">N</span>`.
fn refreshes(dom: &str) -> u32 {
    dom.split("id=\"refreshes\">")
        .nth(1)
        .and_then(|rest| rest.split('<').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

#[test]
fn the_status_page_renders_the_flows_and_keeps_itself_up_to_date() {
    let (source, target) = endpoints();
    let topic = unique("page");
    create_topic(source, &topic, 1);
    produce(source, &topic, 0, &numbered(40));
    let alias = format!("page{}", std::process::id());
    let http = format!("127.0.0.1:{}", free_port());
    let dir = tempfile::tempdir().unwrap();
    let config = write_properties(
        dir.path(),
        "mm2.properties",
        &format!(
            "clusters = {alias}, target\n{alias}.bootstrap.servers = {source}\ntarget.bootstrap.servers = {target}\n\
             {alias}->target.enabled = true\n{alias}->target.topics = {topic}\nreplication.factor = 1\n\
             offset-syncs.topic.replication.factor = 1\ncheckpoints.topic.replication.factor = 1\n\
             heartbeats.topic.replication.factor = 1\noffset.storage.replication.factor = 1\n\
             target.offset.flush.interval.ms = 1000\nemit.heartbeats.enabled = false\nmirrord.http.listen = {http}\n"
        ),
    );
    let flow_id = format!("{alias}->target");
    let daemon = Daemon::start(&config);
    let caught_up = |records: i64| {
        status_of(&http).is_some_and(|status| {
            let flow = flow_status(&status, &flow_id);
            flow["caught_up"] == true
                && partition_status(&status, &flow_id, &topic, 0)["replicated_offset"] == records
        })
    };
    wait_until(Duration::from_secs(60), "caught up", || caught_up(40));

    let url = format!("http://{http}/");
    let dom = rendered(&url, 7_000);
    assert!(
        dom.contains(&format!("data-flow=\"{alias}-&gt;target\"")),
        "the flow is shown:\n{dom}"
    );
    assert!(dom.contains(&format!("data-topic=\"{topic}\"")), "{dom}");
    assert!(dom.contains("data-replicated=\"40\""), "{dom}");
    assert!(
        dom.contains("data-gate=\"lag\""),
        "the cutover gates are shown"
    );
    assert!(
        dom.contains("id=\"error\"></span>"),
        "no error shown:\n{dom}"
    );
    assert!(
        refreshes(&dom) >= 2,
        "it refreshes itself every 2 s: {} refreshes in 7 s",
        refreshes(&dom)
    );

    // New records: the page shows them without anyone reloading it by hand.
    produce(source, &topic, 0, &numbered(25));
    wait_until(Duration::from_secs(60), "caught up again", || caught_up(65));
    let dom = rendered(&url, 3_000);
    assert!(dom.contains("data-replicated=\"65\""), "{dom}");
    drop(daemon);
}
