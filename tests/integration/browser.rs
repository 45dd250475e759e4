//! The status page in a real headless Chromium: it shows each reload event as it arrives, with
//! its changes and their classes, shows a refused edit as refused, and plans a pasted candidate.

use hotcfg_tests::daemon::Daemon;
use hotcfg_tests::webdriver::Browser;
use serde_json::json;

use crate::daemon::binary;
use crate::http::{current_text, http, http_config};

const TOKEN: &str = "t0ps3cret";

/// True when the newest event in the page has `result` and a change of `path` in `class`.
const NEWEST_EVENT_IS: &str = r##"
    const [result, path, cls] = arguments;
    const newest = document.querySelector("#events > li");
    if (!newest || newest.dataset.result !== result) return false;
    return [...newest.querySelectorAll("li.change")]
        .some((c) => c.dataset.path === path && c.dataset.class === cls);
"##;

#[test]
fn the_status_page_shows_reload_events_as_they_happen() {
    let text = http_config("");
    let daemon = Daemon::start(binary(), "reject", &text);
    let http = http(&daemon);
    let browser = Browser::start();
    browser.goto(&format!("http://{http}/"));
    browser.run(
        r##"document.getElementById("token").value = arguments[0];
           document.getElementById("use-token").click();"##,
        json!([TOKEN]),
    );
    browser.wait_for(
        "the page's event stream to open",
        r##"return document.body.dataset.stream === "open";"##,
        json!([]),
    );
    browser.wait_for(
        "the page to show generation 1",
        r##"return document.querySelector("#status tbody").dataset.generation === "1";"##,
        json!([]),
    );

    // A hot edit: the event appears with its change and class, and the status follows.
    daemon.edit(|t| t.replace("max_concurrent = 2", "max_concurrent = 3"));
    browser.wait_for(
        "the applied event with limits.max_concurrent [limits] in the page",
        NEWEST_EVENT_IS,
        json!(["applied", "limits.max_concurrent", "limits"]),
    );
    let shown = browser.run(
        r##"return document.querySelector("#events > li li.change").textContent;"##,
        json!([]),
    );
    assert!(shown.as_str().unwrap().contains("2 -> 3"), "{shown}");
    browser.wait_for(
        "the page to show generation 2",
        r##"return document.querySelector("#status tbody").dataset.generation === "2";"##,
        json!([]),
    );

    // A restart-only edit is refused, and the page says so.
    daemon.edit(|t| t.replace("data_dir = \"data\"", "data_dir = \"elsewhere\""));
    browser.wait_for(
        "the rejected event with storage.data_dir [restart] in the page",
        NEWEST_EVENT_IS,
        json!(["rejected", "storage.data_dir", "restart"]),
    );

    // A pasted candidate's plan, applying nothing.
    let candidate = current_text(&daemon)
        .replace("max_concurrent = 3", "max_concurrent = 4")
        .replace("data_dir = \"elsewhere\"", "data_dir = \"data\"");
    browser.run(
        r##"document.getElementById("candidate").value = arguments[0];
           document.getElementById("plan").click();"##,
        json!([candidate]),
    );
    browser.wait_for(
        "the plan of the pasted candidate",
        r##"return document.getElementById("plan-result").dataset.decision === "apply";"##,
        json!([]),
    );
    let plan = browser.run(
        r##"return document.getElementById("plan-result").textContent;"##,
        json!([]),
    );
    let plan = plan.as_str().unwrap();
    assert!(plan.contains("limits.max_concurrent"), "{plan}");
    // The handlers the reload would run answered the dry run (`prepare` only).
    assert!(plan.contains(r#""scope": "limits""#), "{plan}");
    assert!(plan.contains(r#""verdict": "accepted""#), "{plan}");
}
