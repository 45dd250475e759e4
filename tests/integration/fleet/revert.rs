//! Issue 17: reverting a node on an etcd key to an earlier generation writes the old value back
//! with a compare-and-swap; the node applies it once, with a `revert` trigger.

use hotcfg::etcd::{EtcdClient, EtcdSource};
use hotcfg::{Reloader, RevertError, SourceErrorKind, Trigger};
use hotcfg_tests::Sandbox;

use super::{admin, fast, text, validate, Etcd, NodeConfig, KEY};

#[test]
fn a_revert_on_an_etcd_key_is_a_compare_and_swap_of_the_old_value() {
    let etcd = Etcd::start();
    let admin = admin(&etcd);
    admin.put(KEY, text("0.0.0.0:7000", 2)).unwrap();
    let sandbox = Sandbox::new();
    let client = EtcdClient::with_options([etcd.endpoint()], fast()).unwrap();
    let reloader = Reloader::<NodeConfig>::builder(EtcdSource::new(client, KEY))
        .validator(validate)
        .on_apply("workers", |_| Ok(()))
        .audit_log(sandbox.path("audit.jsonl"))
        .build()
        .unwrap();
    admin.put(KEY, text("0.0.0.0:7000", 9)).unwrap();
    reloader.reload_now();
    assert_eq!(reloader.handle().load().workers, 9);

    let event = reloader.revert_to(1).unwrap();
    assert!(matches!(event.trigger, Trigger::Revert(_)), "{event}");
    assert_eq!(reloader.handle().load().workers, 2);
    let entry = admin.get(KEY).unwrap().unwrap();
    assert_eq!(entry.value, text("0.0.0.0:7000", 2).into_bytes());
    assert_eq!(
        event.source.as_ref().unwrap().revision,
        Some(entry.mod_revision),
        "the node read the value it wrote"
    );
    // Who reverted, and to what, is written beside the value in the same transaction.
    let note = admin.get(&format!("{KEY}/change")).unwrap().unwrap();
    assert_eq!(note.mod_revision, entry.mod_revision);
    let change = event.source.as_ref().unwrap().change.clone();
    let change = change.expect("the revert's note travels with the version read");
    assert_eq!(change.reason.as_deref(), Some("revert to generation 1"));
    assert_eq!(
        change,
        hotcfg::ChangeNote::by_current_user().reason("revert to generation 1")
    );

    // Another writer since the live revision: the swap is refused, nothing written.
    admin.put(KEY, text("0.0.0.0:7000", 5)).unwrap();
    let err = reloader.revert_to(2).unwrap_err();
    let RevertError::Restore { error, .. } = &err else {
        panic!("{err}");
    };
    assert_eq!(error.kind, SourceErrorKind::Unsupported);
    assert!(
        err.to_string()
            .contains("another writer; nothing was written"),
        "{err}"
    );
    assert_eq!(
        admin.get(KEY).unwrap().unwrap().value,
        text("0.0.0.0:7000", 5).into_bytes()
    );
    assert_eq!(reloader.handle().load().workers, 2);
}
