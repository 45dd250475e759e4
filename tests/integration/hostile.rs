//! Hostile configuration files: each is refused with a clear error, within bounded time (and, for
//! the large ones, bounded memory, measured in a child process), and the live configuration stays
//! as it was. Also the file-permission checks (`FileSource::strict_permissions`) and the audit
//! log's append-only, owner-only file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hotcfg::{
    FileSource, HotReload, ReloadError, ReloadEvent, ReloadResult, Reloader, Source, Stage,
    Violations,
};
use hotcfg_tests::Sandbox;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, HotReload)]
struct Cfg {
    #[reload(restart)]
    name: String,
    #[reload(scope = "limits")]
    max: u32,
    #[reload(scope = "limits")]
    #[serde(default)]
    list: Vec<u32>,
    #[reload(scope = "text")]
    #[serde(default)]
    text: String,
    #[reload(scope = "text")]
    #[serde(default)]
    entries: BTreeMap<String, u32>,
}

fn validate(config: &Cfg, v: &mut Violations) {
    v.check(config.max >= 1, "max", "must be at least 1");
    for (key, value) in &config.entries {
        v.check(
            *value < 1000,
            format!("entries.{key}"),
            "must be below 1000",
        );
    }
}

/// Time any refusal may take here: a guard against hangs, not a speed target (speed belongs in
/// the benches). Most refusals take milliseconds; a million-element TOML array takes about 10 s
/// in a debug build on this 2-core machine, and more under load.
const BOUND: Duration = Duration::from_secs(30);

fn initial(ext: &str) -> &'static str {
    match ext {
        "json" => "{\"name\": \"live\", \"max\": 2}",
        "yaml" => "name: live\nmax: 2\n",
        _ => "name = \"live\"\nmax = 2\n",
    }
}

fn changed(ext: &str) -> &'static str {
    match ext {
        "json" => "{\"name\": \"live\", \"max\": 3}",
        "yaml" => "name: live\nmax: 3\n",
        _ => "name = \"live\"\nmax = 3\n",
    }
}

/// An engine on `c.EXT` holding the initial configuration.
struct Live {
    sandbox: Sandbox,
    path: PathBuf,
    ext: &'static str,
    reloader: Reloader<Cfg>,
}

impl Live {
    fn new(ext: &'static str) -> Live {
        let sandbox = Sandbox::new();
        let path = sandbox.write(&format!("c.{ext}"), initial(ext));
        let reloader = Reloader::<Cfg>::builder(FileSource::new(&path))
            .validator(validate)
            .on_apply("limits", |_| Ok(()))
            .on_apply("text", |_| Ok(()))
            .build()
            .unwrap();
        Live {
            sandbox,
            path,
            ext,
            reloader,
        }
    }

    /// Puts `bytes` where the file was (replacing whatever is there) and reloads.
    fn attempt(&self, bytes: &[u8]) -> (std::sync::Arc<ReloadEvent>, Duration) {
        let _ = std::fs::remove_file(&self.path);
        std::fs::write(&self.path, bytes).unwrap();
        self.reload()
    }

    fn reload(&self) -> (std::sync::Arc<ReloadEvent>, Duration) {
        let started = Instant::now();
        let event = self.reloader.reload_now();
        (event, started.elapsed())
    }

    /// The attempt failed at `stage` with an error containing `needle`, in bounded time, and the
    /// engine still serves the initial configuration and applies the next good edit.
    fn assert_refused(
        &self,
        (event, took): (std::sync::Arc<ReloadEvent>, Duration),
        stage: Stage,
        needle: &str,
    ) -> String {
        let ReloadResult::Failed {
            error: ReloadError::Config(error),
            ..
        } = &event.result
        else {
            panic!("expected a refusal containing `{needle}`, got: {event}");
        };
        let message = error.to_string();
        assert_eq!(error.stage, stage, "{message}");
        assert!(message.contains(needle), "`{needle}` not in: {message}");
        assert!(message.len() < 4096, "an error of {} bytes", message.len());
        assert!(took < BOUND, "took {took:?}: {message}");
        let live = self.reloader.handle().snapshot();
        assert_eq!(live.generation(), 1, "{message}");
        assert_eq!((live.name.as_str(), live.max), ("live", 2), "{message}");
        message
    }

    /// The file is a plain good file again, and a good edit applies.
    fn assert_recovers(&self) {
        let _ = std::fs::remove_file(&self.path);
        std::fs::write(&self.path, changed(self.ext)).unwrap();
        let event = self.reloader.reload_now();
        assert!(
            matches!(event.result, ReloadResult::Applied { .. }),
            "{event}"
        );
        assert_eq!(self.reloader.handle().load().max, 3);
    }
}

// ---------------------------------------------------------------------------------------------
// Inputs. Each is a function of a size, so the same input runs here and in a child process.

/// `[t.t.(80 t)]` then `x = { k.k.(80 k) = { k.k... = 1 } }`: toml 1.x allows 80 levels of
/// inline tables and 80 segments per dotted key, which multiply into a document 6,481 levels
/// deep (the deepest it accepts).
fn toml_inline_times_dotted(levels: usize) -> String {
    let key = vec!["k"; 80].join(".");
    let mut text = format!("[{}]\nx = ", vec!["t"; 80].join("."));
    for _ in 0..levels {
        text.push_str(&format!("{{ {key} = "));
    }
    text.push('1');
    text.push_str(&" }".repeat(levels));
    text.push('\n');
    text
}

fn million_toml() -> String {
    let mut text = String::from("name = \"live\"\nmax = 2\nlist = [");
    text.push_str(&"1,".repeat(1_000_000));
    text.push_str("]\n");
    text
}

fn million_json() -> String {
    format!(
        "{{\"name\": \"live\", \"max\": 2, \"list\": [1{}]}}",
        ",1".repeat(999_999)
    )
}

fn million_yaml() -> String {
    format!("name: live\nmax: 2\nlist:\n{}", "- 1\n".repeat(1_000_000))
}

/// Ten levels of nine aliases each: 9^10 (3.4 billion) values from 400 bytes.
fn billion_laughs() -> String {
    let mut text = String::from("name: live\nmax: 2\nl0: &l0 [1, 1, 1, 1, 1, 1, 1, 1, 1]\n");
    for level in 1..=10 {
        let refs = vec![format!("*l{}", level - 1); 9].join(", ");
        text.push_str(&format!("l{level}: &l{level} [{refs}]\n"));
    }
    text
}

/// A string value just under the size limit, in a field that wants a number.
fn huge_string_wrong_type() -> String {
    format!(
        "name = \"live\"\nmax = \"{}\"\n",
        "x".repeat(hotcfg::DEFAULT_MAX_BYTES as usize - 100)
    )
}

// ---------------------------------------------------------------------------------------------
// Bounded memory: the big inputs run in a child process (this test binary, one test), which
// reports its peak resident memory. A stack overflow there fails one test instead of aborting
// the whole suite.

const CHILD_CASE: &str = "HOTCFG_HOSTILE_CASE";

#[test]
#[ignore = "run by the hostile tests in a child process"]
fn hostile_child() {
    let Ok(case) = std::env::var(CHILD_CASE) else {
        return;
    };
    let (ext, text) = match case.as_str() {
        "toml_inline_times_dotted" => ("toml", toml_inline_times_dotted(80)),
        "million_toml" => ("toml", million_toml()),
        "million_json" => ("json", million_json()),
        "million_yaml" => ("yaml", million_yaml()),
        "billion_laughs" => ("yaml", billion_laughs()),
        "huge_string_wrong_type" => ("toml", huge_string_wrong_type()),
        other => panic!("unknown case {other}"),
    };
    let live = Live::new(ext);
    let attempt = live.attempt(text.as_bytes());
    let millis = attempt.1.as_millis();
    let message = live.assert_refused(attempt, Stage::Parse, "");
    live.assert_recovers();
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let peak = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .unwrap_or(0);
    println!("HOSTILE peak_kb={peak} millis={millis} error={message}");
}

struct ChildReport {
    peak_mb: u64,
    millis: u64,
    error: String,
}

fn in_child(case: &str) -> ChildReport {
    let output = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "hostile::hostile_child",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_CASE, case)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "{case}: the child failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    let line = stdout
        .lines()
        .find_map(|l| l.split_once("HOSTILE ").map(|(_, report)| report))
        .unwrap_or_else(|| panic!("{case}: no report:\n{stdout}\n{stderr}"));
    let field = |name: &str| {
        line.split(' ')
            .find_map(|f| f.strip_prefix(name))
            .unwrap()
            .to_string()
    };
    ChildReport {
        peak_mb: field("peak_kb=").parse::<u64>().unwrap() / 1024,
        millis: field("millis=").parse().unwrap(),
        error: line.split_once("error=").unwrap().1.to_string(),
    }
}

fn assert_child(case: &str, max_mb: u64, max_secs: u64, needle: &str) {
    let report = in_child(case);
    eprintln!(
        "{case}: refused in {} ms, peak {} MB: {}",
        report.millis, report.peak_mb, report.error
    );
    assert!(report.error.contains(needle), "{case}: {}", report.error);
    assert!(
        report.millis < max_secs * 1000,
        "{case}: {} ms",
        report.millis
    );
    if cfg!(target_os = "linux") {
        assert!(
            report.peak_mb <= max_mb,
            "{case}: peak {} MB > {max_mb} MB",
            report.peak_mb
        );
    }
}

#[test]
fn deep_toml_inline_tables_times_dotted_keys_do_not_overflow_the_stack() {
    // Before the fix: "thread has overflowed its stack", an abort, while dropping the document.
    assert_child(
        "toml_inline_times_dotted",
        64,
        10,
        "nested deeper than 64 levels",
    );
}

#[test]
fn yaml_aliases_cannot_expand_into_billions_of_values() {
    // Before the fix: memory grew without bound (9^7 values: 0.9 GB; this input is 9^10).
    assert_child("billion_laughs", 64, 10, "more than 100000 values");
}

#[test]
fn million_element_arrays_are_refused_in_bounded_memory() {
    assert_child("million_json", 128, 10, "more than 100000 values");
    assert_child("million_yaml", 256, 20, "more than 100000 values");
    // toml parses the whole array before any value is counted: seconds in a debug build.
    assert_child("million_toml", 512, 60, "more than 100000 values");
}

#[test]
fn a_huge_string_of_the_wrong_type_gives_a_short_error() {
    // Before the fix: the error quoted the whole 4 MiB string, into the event, logs and audit log.
    assert_child("huge_string_wrong_type", 256, 20, "more bytes)");
}

// ---------------------------------------------------------------------------------------------
// Deep nesting, in process (every parser refuses before recursing far).

#[test]
fn deep_nesting_is_refused_in_every_format() {
    let toml = Live::new("toml");
    let dotted = format!("{} = 1\n", vec!["a"; 200].join("."));
    toml.assert_refused(
        toml.attempt(dotted.as_bytes()),
        Stage::Parse,
        "recursion limit",
    );
    let arrays = format!("list = {}1{}\n", "[".repeat(70), "]".repeat(70));
    toml.assert_refused(toml.attempt(arrays.as_bytes()), Stage::Parse, "c.toml:");
    let headers = format!("[{}]\nx = 1\n", vec!["t"; 70].join("."));
    toml.assert_refused(
        toml.attempt(headers.as_bytes()),
        Stage::Parse,
        "nested deeper than 64 levels",
    );
    toml.assert_recovers();

    let json = Live::new("json");
    let deep = format!(
        "{{\"list\": {}1{}}}",
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    json.assert_refused(
        json.attempt(deep.as_bytes()),
        Stage::Parse,
        "nested deeper than 64 levels",
    );
    json.assert_recovers();

    let yaml = Live::new("yaml");
    // Before the fix: libyaml took a minute over this (time quadratic in the nesting).
    let flow = format!("list: {}1{}\n", "[".repeat(100_000), "]".repeat(100_000));
    let message = yaml.assert_refused(yaml.attempt(flow.as_bytes()), Stage::Parse, "nested");
    assert!(message.contains("c.yaml:1:"), "{message}");
    let mut block = String::new();
    for depth in 0..1000 {
        block.push_str(&" ".repeat(depth));
        block.push_str("k:\n");
    }
    yaml.assert_refused(
        yaml.attempt(block.as_bytes()),
        Stage::Parse,
        "nested deeper than 64 levels",
    );
    yaml.assert_recovers();
}

#[test]
fn duplicate_keys_are_refused_in_every_format() {
    // Before the fix JSON and YAML kept the last value silently (TOML always refused).
    for (ext, text, line) in [
        ("toml", "name = \"live\"\nmax = 5\nmax = 6\n", "c.toml:3"),
        (
            "json",
            "{\"name\": \"live\", \"max\": 5,\n \"max\": 6}",
            "c.json:2",
        ),
        // serde_yaml places the error at the start of the table holding the key.
        ("yaml", "name: live\nmax: 5\nmax: 6\n", "c.yaml:1"),
        (
            "json",
            "{\"name\": \"live\", \"max\": 5, \"entries\": {\"a\": 1,\n \"a\": 2}}",
            "c.json:2",
        ),
        (
            "yaml",
            "name: live\nmax: 5\nentries:\n  a: 1\n  a: 2\n",
            "c.yaml:4",
        ),
    ] {
        let live = Live::new(ext);
        let message = live.assert_refused(live.attempt(text.as_bytes()), Stage::Parse, line);
        assert!(
            message.contains("duplicate key `max`")
                || message.contains("duplicate key `entries.a`"),
            "{message}"
        );
        live.assert_recovers();
    }
}

#[test]
fn bytes_that_are_not_text_are_refused() {
    let live = Live::new("toml");
    live.assert_refused(
        live.attempt(b"name = \"live\"\nmax = \xff\xfe\n"),
        Stage::Read,
        "not valid UTF-8 (line 2, byte offset 20)",
    );
    for (ext, text) in [
        ("toml", &b"name = \"live\"\nmax = 2\0\n"[..]),
        ("toml", b"name = \"li\0ve\"\nmax = 2\n"),
        ("json", b"{\"name\": \"li\0ve\", \"max\": 2}"),
        ("yaml", b"name: live\0\nmax: 2\n"),
    ] {
        let live = Live::new(ext);
        live.assert_refused(live.attempt(text), Stage::Parse, &format!("c.{ext}:"));
        live.assert_recovers();
    }
}

#[test]
fn a_file_that_is_above_the_size_limit_is_refused_unread() {
    let live = Live::new("toml");
    let huge = format!(
        "name = \"live\"\nmax = 2\ntext = \"{}\"\n",
        "x".repeat(hotcfg::DEFAULT_MAX_BYTES as usize)
    );
    live.assert_refused(
        live.attempt(huge.as_bytes()),
        Stage::Read,
        "above the limit of 4194304 bytes",
    );
    live.assert_recovers();
}

#[test]
fn a_validator_reporting_thousands_of_problems_stays_fast_and_short() {
    // Before the fix every violation was located by scanning the whole text: 50,000 violations
    // in a 50,000-line file took minutes, and the error listed all of them.
    let live = Live::new("toml");
    let mut text = String::from("name = \"live\"\nmax = 2\n[entries]\n");
    for i in 0..50_000 {
        text.push_str(&format!("k{i} = 5000\n"));
    }
    let message = live.assert_refused(
        live.attempt(text.as_bytes()),
        Stage::Validate,
        "and 49980 more problem(s) not listed",
    );
    assert!(
        message.contains("c.toml:4: `entries.k0`: must be below 1000"),
        "{message}"
    );
    live.assert_recovers();
}

// ---------------------------------------------------------------------------------------------
// Things that are not regular files, put where the file was.

#[cfg(unix)]
fn mkfifo(path: &Path) {
    let status = Command::new("mkfifo").arg(path).status().unwrap();
    assert!(status.success(), "mkfifo {}", path.display());
}

#[cfg(unix)]
#[test]
fn a_fifo_a_device_a_directory_or_a_symlink_loop_in_place_is_refused_at_once() {
    use std::os::unix::fs::symlink;
    let live = Live::new("toml");
    let path = &live.path;

    std::fs::remove_file(path).unwrap();
    mkfifo(path);
    live.assert_refused(live.reload(), Stage::Read, "is not a regular file");

    std::fs::remove_file(path).unwrap();
    symlink("/dev/zero", path).unwrap();
    live.assert_refused(live.reload(), Stage::Read, "is not a regular file");

    std::fs::remove_file(path).unwrap();
    let fifo = live.sandbox.path("fifo");
    mkfifo(&fifo);
    symlink(&fifo, path).unwrap();
    live.assert_refused(live.reload(), Stage::Read, "is not a regular file");

    std::fs::remove_file(path).unwrap();
    std::fs::create_dir(path).unwrap();
    live.assert_refused(live.reload(), Stage::Read, "is a directory");
    std::fs::remove_dir(path).unwrap();

    let other = live.sandbox.path("loop.toml");
    symlink(&other, path).unwrap();
    symlink(path, &other).unwrap();
    live.assert_refused(
        live.reload(),
        Stage::Read,
        "too many levels of symbolic links",
    );
    std::fs::remove_file(&other).unwrap();

    live.assert_recovers();
}

/// Swaps of the path, and reloads of each kind, the FIFO test waits for.
const FIFO_TEST_HITS: u32 = 100;

/// What the reloads of the FIFO test saw.
#[derive(Debug, Default)]
struct FifoTally {
    /// Refused at the read stage as not a regular file: the reload met the FIFO.
    fifo: u32,
    /// Read the good file (applied or unchanged).
    good: u32,
    /// Any other result, which the test refuses.
    other: Vec<String>,
    reloads: u32,
    /// Swaps of the path made while the reloads ran.
    flips: u64,
}

impl FifoTally {
    fn count(&mut self, event: &ReloadEvent) {
        self.reloads += 1;
        match &event.result {
            ReloadResult::Applied { .. } | ReloadResult::Unchanged => self.good += 1,
            ReloadResult::Failed {
                error: ReloadError::Config(error),
                ..
            } if error.stage == Stage::Read
                && error.to_string().contains("is not a regular file") =>
            {
                self.fifo += 1
            }
            _ => self.other.push(event.to_string()),
        }
    }

    fn enough(&self) -> bool {
        self.fifo >= FIFO_TEST_HITS
            && self.good >= FIFO_TEST_HITS
            && self.flips >= u64::from(FIFO_TEST_HITS)
    }
}

#[cfg(unix)]
#[test]
fn a_fifo_swapped_in_between_the_check_and_the_open_never_hangs_a_reload() {
    // A thread keeps renaming a FIFO and a good file over the config path, at most one swap per
    // finished reload, while reloads run until there were enough swaps and enough reloads of
    // each kind (whatever the scheduler does). Before the fix a reload that checked the good
    // file and then opened the FIFO waited for a writer forever (this test then times out).
    let live = Live::new("toml");
    let good = live.sandbox.path("good.toml");
    let fifo = live.sandbox.path("fifo.toml");
    std::fs::write(&good, changed("toml")).unwrap();
    mkfifo(&fifo);
    let stop = Arc::new(AtomicBool::new(false));
    let reloads = Arc::new(AtomicU64::new(0));
    let flips = Arc::new(AtomicU64::new(0));
    let flipper = {
        let (stop, reloads, path) = (stop.clone(), reloads.clone(), live.path.clone());
        let (good, fifo, flips) = (good.clone(), fifo.clone(), flips.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let finished = reloads.load(Ordering::SeqCst);
                // Hard links keep both names: link, then rename over the config path.
                let (from, tmp) = if flips.load(Ordering::SeqCst) & 1 == 0 {
                    (&fifo, path.with_extension("f"))
                } else {
                    (&good, path.with_extension("g"))
                };
                let _ = std::fs::remove_file(&tmp);
                std::fs::hard_link(from, &tmp).unwrap();
                std::fs::rename(&tmp, &path).unwrap();
                flips.fetch_add(1, Ordering::SeqCst);
                while reloads.load(Ordering::SeqCst) == finished && !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_micros(20));
                }
            }
        })
    };
    // Reload until both kinds were met often enough (at most 20,000 reloads).
    let reloader = live.reloader.clone();
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    {
        let reloads = reloads.clone();
        std::thread::spawn(move || {
            let mut tally = FifoTally::default();
            while tally.reloads < 20_000 && !tally.enough() {
                tally.count(&reloader.reload_now());
                reloads.fetch_add(1, Ordering::SeqCst);
                tally.flips = flips.load(Ordering::SeqCst);
            }
            let _ = done_tx.send(tally);
        });
    }
    let outcome = done_rx.recv_timeout(Duration::from_secs(60));
    stop.store(true, Ordering::Relaxed);
    flipper.join().unwrap();
    let Ok(tally) = outcome else {
        // Free the stuck reader so the process can exit, then fail.
        let _ = std::fs::OpenOptions::new().write(true).open(&fifo);
        panic!("the reloads did not finish within 60 s: a reload hangs on the FIFO");
    };
    eprintln!("FIFO test: {tally:?}");
    assert!(
        tally.other.is_empty(),
        "unexpected results: {:?}",
        tally.other
    );
    assert!(
        tally.enough(),
        "wanted {FIFO_TEST_HITS} swaps, {FIFO_TEST_HITS} reloads meeting the FIFO and as many reading the good file: {tally:?}"
    );
}

/// Whether this process runs as root (which reads files whatever their mode).
#[cfg(unix)]
fn running_as_root(sandbox: &Sandbox) -> bool {
    use std::os::unix::fs::MetadataExt;
    let probe = sandbox.write("owner-probe", "");
    std::fs::metadata(probe).unwrap().uid() == 0
}

/// A mode-000 file is refused as `permission denied` and the live configuration stays.
#[cfg(unix)]
fn assert_an_unreadable_file_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let live = Live::new("toml");
    std::fs::write(&live.path, changed("toml")).unwrap();
    std::fs::set_permissions(&live.path, std::fs::Permissions::from_mode(0o000)).unwrap();
    live.assert_refused(live.reload(), Stage::Read, "permission denied");
}

/// The user the unreadable-file check drops to when the tests run as root (`nobody`).
#[cfg(unix)]
const UNPRIVILEGED: u32 = 65534;

#[cfg(unix)]
#[test]
fn an_unreadable_file_is_refused_even_when_the_tests_run_as_root() {
    if !running_as_root(&Sandbox::new()) {
        assert_an_unreadable_file_is_refused();
        return;
    }
    // Root reads a mode-000 file anyway, so the refusal is checked in a child (this test
    // binary, one ignored test) that runs as an unprivileged user.
    use std::os::unix::process::CommandExt;
    let output = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "hostile::unreadable_file_child",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .uid(UNPRIVILEGED)
        .gid(UNPRIVILEGED)
        .env("TMPDIR", "/tmp")
        .output()
        .expect("run the unreadable-file check as an unprivileged user");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && stdout.contains("UNREADABLE refused as uid"),
        "the unprivileged child failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
}

/// Run (as an unprivileged user) by the test above.
#[cfg(unix)]
#[test]
#[ignore = "run by an_unreadable_file_is_refused_even_when_the_tests_run_as_root"]
fn unreadable_file_child() {
    use std::os::unix::fs::MetadataExt;
    let sandbox = Sandbox::new();
    assert!(!running_as_root(&sandbox), "the child still runs as root");
    let uid = std::fs::metadata(sandbox.write("owner-probe", ""))
        .unwrap()
        .uid();
    assert_an_unreadable_file_is_refused();
    println!("UNREADABLE refused as uid {uid}");
}

// ---------------------------------------------------------------------------------------------
// Files: strict permissions (sshd's StrictModes) and the audit log.

#[cfg(unix)]
#[test]
fn strict_permissions_refuse_files_others_could_have_written() {
    use std::os::unix::fs::{symlink, PermissionsExt};
    let sandbox = Sandbox::new();
    let path = sandbox.write("app.toml", initial("toml"));
    let mode = |path: &Path, mode: u32| {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap()
    };
    let strict = || FileSource::new(&path).strict_permissions(true);

    // At startup: a clear error, no engine.
    mode(&path, 0o664);
    let err = Reloader::<Cfg>::builder(strict()).build().unwrap_err();
    assert!(
        err.to_string().ends_with(
            "app.toml: refused: writable by group (mode 0664); strict permissions are on: `chmod go-w` it"
        ),
        "{err}"
    );
    // Without the option the same file loads.
    Reloader::<Cfg>::builder(FileSource::new(&path))
        .build()
        .unwrap();

    mode(&path, 0o644);
    let reloader = Reloader::<Cfg>::builder(strict()).build().unwrap();
    for (file_mode, writers) in [
        (0o666, "group and others"),
        (0o646, "others"),
        (0o620, "group"),
    ] {
        std::fs::write(&path, changed("toml")).unwrap();
        mode(&path, file_mode);
        let event = reloader.reload_now();
        let text = event.to_string();
        assert!(
            text.contains(&format!("writable by {writers} (mode {file_mode:04o})")),
            "{text}"
        );
        assert_eq!(reloader.handle().generation(), 1);
    }
    mode(&path, 0o600);
    assert!(reloader.reload_now().result.is_ok());
    assert_eq!(reloader.handle().load().max, 3);

    // A symlink is judged by the file it points to.
    let target = sandbox.write("target.toml", initial("toml"));
    mode(&target, 0o666);
    let link = sandbox.path("link.toml");
    symlink(&target, &link).unwrap();
    let err = FileSource::new(&link)
        .strict_permissions(true)
        .read()
        .unwrap_err();
    assert!(
        err.problem.contains("writable by group and others"),
        "{err}"
    );

    // Whoever may write the directory may replace the file; the sticky bit prevents that.
    let dir = sandbox.path("shared");
    std::fs::create_dir(&dir).unwrap();
    let inside = dir.join("app.toml");
    std::fs::write(&inside, initial("toml")).unwrap();
    mode(&dir, 0o777);
    let err = FileSource::new(&inside)
        .strict_permissions(true)
        .read()
        .unwrap_err();
    assert!(
        err.problem.contains("its directory")
            && err
                .problem
                .contains("is writable by group and others (mode 0777)"),
        "{err}"
    );
    mode(&dir, 0o1777);
    FileSource::new(&inside)
        .strict_permissions(true)
        .read()
        .unwrap();

    // Owned by another user (only root can give a file away).
    if running_as_root(&sandbox) {
        let status = Command::new("chown")
            .args(["4242", inside.to_str().unwrap()])
            .status()
            .unwrap();
        assert!(status.success());
        let err = FileSource::new(&inside)
            .strict_permissions(true)
            .read()
            .unwrap_err();
        assert!(
            err.problem
                .contains("is owned by uid 4242, neither root nor"),
            "{err}"
        );
    }
}

#[cfg(unix)]
#[test]
fn the_audit_log_is_private_and_append_only() {
    use std::os::unix::fs::PermissionsExt;
    let sandbox = Sandbox::new();
    let path = sandbox.write("c.toml", initial("toml"));
    let audit = sandbox.path("audit.jsonl");
    let build = || {
        Reloader::<Cfg>::builder(FileSource::new(&path))
            .audit_log(&audit)
            .build()
            .unwrap()
    };
    let reloader = build();
    let mode = std::fs::metadata(&audit).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "created {mode:o}");
    // Other bytes, the same values: an `unchanged` record (the very same bytes record nothing).
    std::fs::write(&path, format!("# touched\n{}", initial("toml"))).unwrap();
    reloader.reload_now();
    assert_eq!(hotcfg::verify_audit_log(&audit).unwrap().len(), 2);

    // Another process truncates the log under the open engine: the next record lands at the new
    // end. A log opened without O_APPEND would write at its old offset, after a hole of NULs.
    std::fs::OpenOptions::new()
        .write(true)
        .open(&audit)
        .unwrap()
        .set_len(0)
        .unwrap();
    std::fs::write(&path, changed("toml")).unwrap();
    reloader.reload_now();
    let bytes = std::fs::read(&audit).unwrap();
    assert!(
        !bytes.contains(&0),
        "a hole of NUL bytes: written at the old offset"
    );
    assert_eq!(bytes.iter().filter(|b| **b == b'\n').count(), 1);
    drop(reloader);

    // Reopened, it continues the file (and the chain) instead of replacing it.
    std::fs::remove_file(&audit).unwrap();
    let first = build();
    drop(first);
    let before = std::fs::read(&audit).unwrap();
    let second = build();
    std::fs::write(&path, initial("toml")).unwrap();
    second.reload_now();
    let after = std::fs::read(&audit).unwrap();
    assert!(after.starts_with(&before));
    assert_eq!(hotcfg::verify_audit_log(&audit).unwrap().len(), 3);
}
