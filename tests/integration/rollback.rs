//! The rollback outcome of a failed reload: not needed, complete, or incomplete with the errors,
//! each with its own message (issue 13; the `rollback_performed` flag said "nothing was applied"
//! when a rollback failed, and "rolled back" when nothing had applied).

use hotcfg::{
    ApplyContext, AuditRecord, BoxError, FileSource, HotReload, ReloadError, ReloadResult,
    Reloader, Rollback, ScopeHandler,
};
use hotcfg_tests::Sandbox;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, HotReload)]
struct Config {
    #[reload(scope = "first")]
    first: u32,
    #[reload(scope = "second")]
    second: u32,
    #[reload(scope = "last")]
    last: u32,
}

/// How a handler's rollback ends.
#[derive(Clone, Copy)]
enum Undo {
    Ok,
    Fails,
    Panics,
}

/// Applies successfully (unless `fail_apply`), and rolls back as `undo` says.
struct Handler {
    fail_apply: bool,
    undo: Undo,
}

impl ScopeHandler<Config> for Handler {
    fn apply(&self, cx: &ApplyContext<'_, Config>) -> Result<(), BoxError> {
        if self.fail_apply {
            return Err(format!("cannot apply {}", cx.scope).into());
        }
        Ok(())
    }
    fn rollback(&self, cx: &ApplyContext<'_, Config>) -> Result<(), BoxError> {
        match self.undo {
            Undo::Ok => Ok(()),
            Undo::Fails => Err(format!("cannot restore {}", cx.scope).into()),
            Undo::Panics => panic!("rollback of {} exploded", cx.scope),
        }
    }
}

const APPLIES: Handler = Handler {
    fail_apply: false,
    undo: Undo::Ok,
};
const FAILS: Handler = Handler {
    fail_apply: true,
    undo: Undo::Ok,
};

/// An engine whose `last` scope depends on `first` and `second` (so they apply before it), with
/// the given handlers (`None`: the scope has none), after a change that touches `last` only.
/// Returns the failed reload's error, rollback and the event's text.
fn fail_last(
    first: Option<Handler>,
    second: Option<Handler>,
) -> (ReloadError, Rollback, String, Sandbox) {
    let sandbox = Sandbox::new();
    let path = sandbox.write("app.toml", "first = 1\nsecond = 2\nlast = 3\n");
    let mut builder = Reloader::<Config>::builder(FileSource::new(&path))
        .scope_depends_on("last", &["first", "second"])
        .audit_log(sandbox.path("audit.jsonl"));
    if let Some(handler) = first {
        builder = builder.handler("first", handler);
    }
    if let Some(handler) = second {
        builder = builder.handler("second", handler);
    }
    let reloader = builder.handler("last", FAILS).build().unwrap();
    sandbox.write("app.toml", "first = 1\nsecond = 2\nlast = 30\n");
    let event = reloader.reload_now();
    let text = event.to_string();
    let ReloadResult::Failed { error, rollback } = event.result.clone() else {
        panic!("expected a failure, got {event}");
    };
    assert_eq!(reloader.handle().generation(), 1, "nothing was committed");
    assert_eq!(
        reloader.handle().load().last,
        3,
        "readers keep the old value"
    );
    (error, rollback, text, sandbox)
}

fn handler_failure() -> ReloadError {
    ReloadError::Handler {
        scope: "last".into(),
        message: "cannot apply last".into(),
    }
}

/// The event's last line: what became of the rollback.
fn outcome_line(text: &str) -> &str {
    text.lines().last().unwrap().trim()
}

/// The second audit record (the first is the startup).
fn audit_record(sandbox: &Sandbox) -> AuditRecord {
    let log = std::fs::read_to_string(sandbox.path("audit.jsonl")).unwrap();
    let line = log.lines().nth(1).expect("a record of the failed reload");
    serde_json::from_str(line).unwrap()
}

#[test]
fn when_the_first_handler_fails_nothing_needs_rolling_back() {
    let (error, rollback, text, sandbox) = fail_last(None, None);
    assert_eq!(error, handler_failure());
    assert_eq!(rollback, Rollback::NotNeeded);
    assert_eq!(
        outcome_line(&text),
        "nothing was applied; the previous configuration stays live"
    );
    let record = audit_record(&sandbox);
    assert!(!record.rollback, "{record:?}");
    assert_eq!(
        record.error.as_deref(),
        Some("handler for scope `last` failed: cannot apply last")
    );
}

#[test]
fn handlers_that_applied_are_rolled_back_in_reverse_order() {
    let (error, rollback, text, sandbox) = fail_last(Some(APPLIES), Some(APPLIES));
    assert_eq!(error, handler_failure());
    assert_eq!(
        rollback,
        Rollback::Complete {
            scopes: vec!["second".into(), "first".into()]
        }
    );
    assert_eq!(
        outcome_line(&text),
        "rolled back `second`, `first`; the previous configuration stays live"
    );
    assert!(audit_record(&sandbox).rollback);
}

#[test]
fn a_failing_rollback_is_reported_as_incomplete_with_its_error() {
    let failing_undo = Handler {
        fail_apply: false,
        undo: Undo::Fails,
    };
    let (error, rollback, text, sandbox) = fail_last(Some(failing_undo), Some(APPLIES));
    // The handler's own error is not mixed with the rollback's.
    assert_eq!(error, handler_failure());
    assert_eq!(
        rollback,
        Rollback::Incomplete {
            errors: vec!["rollback of `first`: cannot restore first".into()]
        }
    );
    assert_eq!(
        outcome_line(&text),
        "rollback incomplete (rollback of `first`: cannot restore first); readers keep the \
         previous configuration, but those subsystems may still run the refused one"
    );
    let record = audit_record(&sandbox);
    assert!(record.rollback);
    assert!(
        record
            .error
            .as_deref()
            .is_some_and(|e| e.contains("rollback incomplete (rollback of `first`")),
        "{record:?}"
    );
}

#[test]
fn a_panicking_rollback_is_caught_and_reported_as_incomplete() {
    let panicking_undo = Handler {
        fail_apply: false,
        undo: Undo::Panics,
    };
    let (error, rollback, text, _sandbox) = fail_last(Some(APPLIES), Some(panicking_undo));
    assert_eq!(error, handler_failure());
    assert_eq!(
        rollback,
        Rollback::Incomplete {
            errors: vec!["rollback of `second` panicked: rollback of second exploded".into()]
        }
    );
    assert_eq!(
        outcome_line(&text),
        "rollback incomplete (rollback of `second` panicked: rollback of second exploded); \
         readers keep the previous configuration, but those subsystems may still run the \
         refused one"
    );
}
