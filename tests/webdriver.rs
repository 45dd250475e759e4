//! A headless Chromium driven over WebDriver (Debian's `chromium` and `chromium-driver`, which
//! `scripts/install-deps` installs), spoken with the tests' own HTTP client: the few commands
//! the status page test needs, no client crate to build.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};

use serde_json::{json, Value};

use crate::daemon::LIMIT;
use crate::http_client::Connection;
use crate::{wait_until, Sandbox};

/// A chromedriver process with one headless Chromium session; both end on drop.
#[derive(Debug)]
pub struct Browser {
    driver: Child,
    addr: String,
    session: String,
    _profile: Sandbox,
}

impl Browser {
    /// Starts chromedriver on a free loopback port and opens a headless session.
    pub fn start() -> Browser {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver (Debian chromium-driver; run scripts/install-deps)");
        let addr = format!("127.0.0.1:{port}");
        let mut browser = Browser {
            driver,
            addr,
            session: String::new(),
            _profile: Sandbox::new(),
        };
        wait_until("chromedriver to be ready", LIMIT, || {
            std::net::TcpStream::connect(&browser.addr).is_ok()
                && browser.call("GET", "/status", Value::Null)["value"]["ready"] == true
        });
        let profile = browser._profile.dir().display().to_string();
        let capabilities = json!({ "capabilities": { "alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                         "--disable-dev-shm-usage", format!("--user-data-dir={profile}")],
            },
        }}});
        let created = browser.call("POST", "/session", capabilities);
        browser.session = created["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {created}"))
            .to_string();
        browser
    }

    fn call(&self, method: &str, path: &str, body: Value) -> Value {
        let body = if body.is_null() {
            Vec::new()
        } else {
            body.to_string().into_bytes()
        };
        let answer = Connection::open(&self.addr)
            .send(
                method,
                path,
                None,
                &[("content-type", "application/json")],
                &body,
            )
            .unwrap_or_else(|e| panic!("webdriver {method} {path}: {e}"));
        answer.json()
    }

    /// Opens `url`.
    pub fn goto(&self, url: &str) {
        let path = format!("/session/{}/url", self.session);
        let answer = self.call("POST", &path, json!({ "url": url }));
        assert!(answer["value"].is_null(), "navigate to {url}: {answer}");
    }

    /// Runs `script` (a function body; `arguments` holds `args`) in the page and returns its value.
    pub fn run(&self, script: &str, args: Value) -> Value {
        let path = format!("/session/{}/execute/sync", self.session);
        let answer = self.call("POST", &path, json!({ "script": script, "args": args }));
        if answer["value"]["error"].is_string() {
            panic!("script failed: {answer}");
        }
        answer["value"].clone()
    }

    /// Waits until `script` returns `true`, naming `what` on timeout.
    pub fn wait_for(&self, what: &str, script: &str, args: Value) {
        wait_until(what, LIMIT, || self.run(script, args.clone()) == true);
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let path = format!("/session/{}", self.session);
            let _ = Connection::open(&self.addr).send("DELETE", &path, None, &[], b"");
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
