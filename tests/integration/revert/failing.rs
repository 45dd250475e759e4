//! A revert whose attempt fails in a handler: the refusal names the error, and the rollback when
//! one was attempted. Kills the guard `rollback.was_attempted()` in `engine/revert.rs`'s
//! `refused` replaced by `true` or `false` (cargo-mutants, issue 22).

use std::sync::atomic::AtomicBool;

use super::*;

/// Fails every apply while `fail` is set.
struct Banner {
    fail: Arc<AtomicBool>,
}

impl ScopeHandler<Config> for Banner {
    fn apply(&self, cx: &ApplyContext<'_, Config>) -> Result<(), BoxError> {
        if self.fail.load(Ordering::SeqCst) {
            return Err(format!("cannot show {}", cx.new.banner).into());
        }
        Ok(())
    }
}

/// The reason a revert to generation 1 gives when `banner` fails, the scopes in this order.
fn refusal(first: &str, then: &str) -> String {
    let sandbox = Sandbox::new();
    sandbox.write("app.toml", &text(2));
    let fail = Arc::new(AtomicBool::new(false));
    let reloader = builder(&sandbox, &Pool::default(), &Arc::new(AtomicU32::new(100)))
        .handler(
            "banner",
            Banner {
                fail: Arc::clone(&fail),
            },
        )
        .scope_depends_on(then, &[first])
        .build()
        .unwrap();
    sandbox.write("app.toml", &text(4));
    let event = reloader.reload_now();
    assert!(
        matches!(event.result, ReloadResult::Applied { .. }),
        "{event}"
    );
    fail.store(true, Ordering::SeqCst);
    let err = reloader.revert_to(1).unwrap_err();
    let RevertError::Refused { reason, event, .. } = &err else {
        panic!("{err}");
    };
    assert!(
        matches!(event.result, ReloadResult::Failed { .. }),
        "{event}"
    );
    assert_eq!(reloader.handle().load().workers, 4, "nothing changed");
    reason.clone()
}

#[test]
fn a_handler_failing_after_another_applied_refuses_the_revert_naming_the_rollback() {
    assert_eq!(
        refusal("pool", "banner"),
        "handler for scope `banner` failed: cannot show v2; rolled back `pool`; the previous \
         configuration stays live"
    );
}

#[test]
fn a_handler_failing_first_refuses_the_revert_with_its_error_alone() {
    assert_eq!(
        refusal("banner", "pool"),
        "handler for scope `banner` failed: cannot show v2"
    );
}
