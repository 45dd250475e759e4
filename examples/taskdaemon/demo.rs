//! `--demo`: a scripted tour. The daemon runs on a copy of the default configuration in a
//! temporary directory while a second task edits that file and prints what each reload did.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use hotcfg::{ReloadEvent, ReloadResult, RestartPolicy};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::broadcast;

mod probation_step;

use crate::config::DEFAULT_CONFIG;
use crate::daemon::{self, Settings};

/// A keep-alive HTTP/1.1 client of the daemon's API, as small as the tour needs: JSON answers
/// with a `content-length`, which is how the API answers everything but the event stream.
pub struct Client {
    stream: BufReader<TcpStream>,
}

impl Client {
    /// Connects to the daemon.
    pub async fn connect(addr: std::net::SocketAddr) -> Result<Client, String> {
        let stream = TcpStream::connect(addr)
            .await
            .map_err(|e| format!("connect {addr}: {e}"))?;
        Ok(Client {
            stream: BufReader::new(stream),
        })
    }

    /// `GET path`.
    pub async fn get(&mut self, path: &str) -> Result<Value, String> {
        self.request("GET", path, "").await
    }

    /// `POST path` with a JSON `body`.
    pub async fn post(&mut self, path: &str, body: &str) -> Result<Value, String> {
        self.request("POST", path, body).await
    }

    async fn request(&mut self, method: &str, path: &str, body: &str) -> Result<Value, String> {
        let request = format!(
            "{method} {path} HTTP/1.1\r\nhost: taskdaemon\r\ncontent-type: application/json\r\n\
             content-length: {}\r\n\r\n{body}",
            body.len()
        );
        let what = format!("{method} {path}");
        self.stream
            .get_mut()
            .write_all(request.as_bytes())
            .await
            .map_err(|e| format!("send {what}: {e}"))?;
        let mut length = 0;
        let mut line = String::new();
        loop {
            line.clear();
            let n = self
                .stream
                .read_line(&mut line)
                .await
                .map_err(|e| format!("read the answer to {what}: {e}"))?;
            if n == 0 {
                return Err(format!("the daemon closed the connection after {what}"));
            }
            if line.trim_end().is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse().unwrap_or(0);
                }
            }
        }
        let mut body = vec![0; length];
        self.stream
            .read_exact(&mut body)
            .await
            .map_err(|e| format!("read the body of {what}: {e}"))?;
        serde_json::from_slice(&body).map_err(|e| format!("the answer to {what} is not JSON: {e}"))
    }
}

struct Tour {
    config: PathBuf,
    events: broadcast::Receiver<Arc<ReloadEvent>>,
    step: usize,
}

impl Tour {
    fn read(&self) -> Result<toml::Table, String> {
        let text = std::fs::read_to_string(&self.config).map_err(|e| e.to_string())?;
        text.parse::<toml::Table>().map_err(|e| e.to_string())
    }

    /// Saves the file the way editors do (write a temporary file, rename it over the config).
    fn save(&self, text: &str) -> Result<(), String> {
        save_atomically(&self.config, text)
    }

    fn save_table(&self, table: &toml::Table) -> Result<(), String> {
        self.save(&toml::to_string(table).map_err(|e| e.to_string())?)
    }

    /// Waits for the reload the watcher starts after an edit.
    async fn next_event(&mut self, what: &str) -> Result<Arc<ReloadEvent>, String> {
        loop {
            match tokio::time::timeout(Duration::from_secs(10), self.events.recv()).await {
                Ok(Ok(event)) => return Ok(event),
                Ok(Err(broadcast::error::RecvError::Lagged(_))) => continue,
                Ok(Err(e)) => return Err(format!("event stream ended: {e}")),
                Err(_) => return Err(format!("no reload within 10 s after {what}")),
            }
        }
    }

    fn title(&mut self, text: &str) {
        self.step += 1;
        println!("\n== step {}: {text}", self.step);
    }
}

fn save_atomically(path: &Path, text: &str) -> Result<(), String> {
    let tmp = path.with_extension("toml.tmp");
    std::fs::write(&tmp, text).map_err(|e| format!("write {}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, path).map_err(|e| format!("rename over {}: {e}", path.display()))
}

fn show(event: &ReloadEvent) {
    for line in event.to_string().lines() {
        println!("   {line}");
    }
}

fn expect(ok: bool, what: &str) -> Result<(), String> {
    if ok {
        println!("   ok: {what}");
        Ok(())
    } else {
        Err(format!("demo step failed: expected {what}"))
    }
}

fn loop_iterations(status: &Value) -> Vec<(u64, u64)> {
    status["loops"]
        .as_array()
        .map(|loops| {
            loops
                .iter()
                .map(|l| {
                    (
                        l["id"].as_u64().unwrap_or(0),
                        l["iterations"].as_u64().unwrap_or(0),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Every loop present before is still running, with more iterations.
fn loops_continued(before: &[(u64, u64)], after: &[(u64, u64)]) -> bool {
    before
        .iter()
        .all(|(id, n)| after.iter().any(|(id2, n2)| id2 == id && n2 >= n))
}

/// Runs the tour; an unexpected result fails the demo.
pub async fn run(policy: RestartPolicy) -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(|e| format!("temporary directory: {e}"))?;
    let config = dir.path().join("taskdaemon.toml");
    let mut table: toml::Table = DEFAULT_CONFIG
        .parse()
        .map_err(|e: toml::de::Error| e.to_string())?;
    // Port 0: any free port; long `build` loops so they run through the whole tour.
    table["daemon"]["listen"] = "127.0.0.1:0".into();
    table["loops"]["build"]["max_iterations"] = 100_000.into();
    table["loops"]["build"]["delay_ms"] = 20.into();
    // The tour prints every event itself; logs would only repeat them.
    table["monitoring"]["log_level"] = "error".into();
    save_atomically(
        &config,
        &toml::to_string(&table).map_err(|e| e.to_string())?,
    )?;

    println!(
        "hotcfg demo: taskdaemon on {} (policy {policy:?})",
        config.display()
    );
    let audit = dir.path().join("audit.jsonl");
    let running = daemon::start(&Settings {
        config: config.clone(),
        initial_log_level: "error",
        audit_log: Some(audit.clone()),
        audit_failure: hotcfg::AuditFailure::FailClosed,
        policy,
        probation: crate::probation::ProbationArgs::demo(),
        #[cfg(feature = "etcd")]
        etcd: None,
    })
    .await?;
    let mut tour = Tour {
        config: config.clone(),
        events: running.reloader.events(),
        step: 0,
    };
    println!(
        "status page: http://{}/ (open it to watch the tour)",
        running.addr
    );
    let mut alice = Client::connect(running.addr).await?;
    let mut bob = Client::connect(running.addr).await?;
    for _ in 0..3 {
        alice.post("/api/submit", r#"{"type": "build"}"#).await?;
    }
    bob.post("/api/submit", r#"{"type": "report"}"#).await?;
    let status = wait_for_loops(&mut bob, 2).await?;
    println!(
        "started: generation {}, {} loops running, {} queued, 2 clients connected",
        status["generation"],
        loop_iterations(&status).len(),
        status["queue_len"]
    );

    tour.title("a hot change: limits.max_concurrent 2 -> 4");
    let before = loop_iterations(&alice.get("/api/status").await?);
    let mut table = tour.read()?;
    table["limits"]["max_concurrent"] = 4.into();
    tour.save_table(&table)?;
    let event = tour.next_event("raising limits.max_concurrent").await?;
    show(&event);
    expect(
        matches!(event.result, ReloadResult::Applied { .. }),
        "applied",
    )?;
    let status = bob.get("/api/status").await?;
    expect(status["max_concurrent"] == 4, "4 loops may run now")?;
    expect(
        loops_continued(&before, &loop_iterations(&status)),
        "every running loop kept its id and its progress",
    )?;
    expect(
        status["connections"] == 2,
        "both clients are still connected",
    )?;
    let good = table.clone();

    tour.title("a restart-only change: daemon.listen");
    let mut table = good.clone();
    table["daemon"]["listen"] = "127.0.0.1:9".into();
    tour.save_table(&table)?;
    let event = tour.next_event("changing daemon.listen").await?;
    show(&event);
    match policy {
        RestartPolicy::Reject => expect(
            matches!(event.result, ReloadResult::Rejected { .. }),
            "rejected: the listener cannot move while clients are connected",
        )?,
        RestartPolicy::Defer => expect(
            !event.result.pending_restart().is_empty(),
            "deferred: pending until restart",
        )?,
    }
    tour.save_table(&good)?;
    show(&*tour.next_event("restoring the file").await?);

    tour.title("an invalid file: limits.max_concurrent = 0");
    let mut table = good.clone();
    table["limits"]["max_concurrent"] = 0.into();
    tour.save_table(&table)?;
    let event = tour.next_event("writing an invalid value").await?;
    show(&event);
    expect(
        matches!(event.result, ReloadResult::Failed { .. }),
        "kept out; the running configuration stays",
    )?;
    expect(
        alice.get("/api/status").await?["max_concurrent"] == 4,
        "still 4 concurrent loops",
    )?;
    tour.save_table(&good)?;
    show(&*tour.next_event("fixing the file").await?);

    tour.title("removing loop type `build` while loops use it");
    let mut table = good.clone();
    if let Some(loops) = table["loops"].as_table_mut() {
        loops.remove("build");
    }
    tour.save_table(&table)?;
    let event = tour.next_event("removing a loop type").await?;
    show(&event);
    expect(
        matches!(event.result, ReloadResult::Rejected { .. }),
        "vetoed by the loops handler; nothing changed",
    )?;
    tour.save_table(&good)?;
    show(&*tour.next_event("restoring the file").await?);

    tour.title("a failure after a handler applied: limits + a status file in a missing directory");
    let mut table = good.clone();
    table["limits"]["max_concurrent"] = 5.into();
    if let Some(monitoring) = table["monitoring"].as_table_mut() {
        monitoring.insert("status_file".into(), "no-such-dir/status.json".into());
    }
    tour.save_table(&table)?;
    let event = tour
        .next_event("an edit the monitoring handler cannot apply")
        .await?;
    show(&event);
    expect(
        matches!(
            event.result,
            ReloadResult::Failed {
                rollback: hotcfg::Rollback::Complete { .. },
                ..
            }
        ),
        "failed and rolled back",
    )?;
    expect(
        bob.get("/api/status").await?["max_concurrent"] == 4,
        "limits rolled back to 4",
    )?;
    tour.save_table(&good)?;
    show(&*tour.next_event("restoring the file").await?);

    tour.title("a watched template file");
    let template = dir.path().join("banner.tmpl");
    std::fs::write(&template, "[{type} #{id}] {iteration}/{max}\n").map_err(|e| e.to_string())?;
    let mut table = good.clone();
    table["templates"]["template_files"] = toml::Value::Array(vec!["banner.tmpl".into()]);
    table["loops"]["report"]["template"] = "banner".into();
    tour.save_table(&table)?;
    show(&*tour.next_event("adding a template file").await?);
    save_atomically(&template, "<<{type} {id}>> step {iteration} of {max}\n")?;
    let event = tour.next_event("editing the template file").await?;
    show(&event);
    expect(
        matches!(event.result, ReloadResult::Applied { .. })
            && matches!(&event.trigger, hotcfg::Trigger::File(p) if p.ends_with("banner.tmpl")),
        "reloaded because banner.tmpl changed",
    )?;

    probation_step::run(&mut tour, &mut alice, &mut bob, &running.reloader).await?;

    println!("\n== the end");
    let status = alice.get("/api/status").await?;
    println!(
        "generation {}, {} loops running, {} queued, {} finished, 2 clients still connected",
        status["generation"],
        loop_iterations(&status).len(),
        status["queue_len"],
        status["finished"]
    );
    drop(tour);
    running.stop().await;
    let records = hotcfg::verify_audit_log(&audit).map_err(|e| e.to_string())?;
    println!(
        "audit log: {} records, hash chain verified ({})",
        records.len(),
        audit.display()
    );
    println!("demo finished: every step behaved as expected");
    Ok(())
}

async fn wait_for_loops(client: &mut Client, count: usize) -> Result<Value, String> {
    for _ in 0..500 {
        let status = client.get("/api/status").await?;
        if loop_iterations(&status)
            .iter()
            .filter(|(_, n)| *n > 0)
            .count()
            >= count
        {
            return Ok(status);
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Err(format!("{count} loops did not start within 5 s"))
}
