//! Unit tests of `EtcdSource`: assembling a prefix, a rollout's candidate, kept versions,
//! hashing, and the errors of a bad key or value.

use super::*;
use crate::etcd::{Entry, RolloutState};

fn entry(key: &str, value: &str, mod_revision: i64) -> Entry {
    Entry {
        key: key.into(),
        value: value.as_bytes().to_vec(),
        mod_revision,
    }
}

fn client() -> EtcdClient {
    EtcdClient::new(["127.0.0.1:9"]).unwrap()
}

#[test]
fn a_prefix_is_assembled_in_key_order_without_status_keys() {
    let source = EtcdSource::prefix(client(), "app/conf.d/").exclude("app/conf.d/private/");
    let listing = Listing {
        entries: vec![
            entry("app/conf.d/00-base.toml", "workers = 1\n", 5),
            entry("app/conf.d/10-region.yaml", "workers: 2\n", 9),
            entry("app/conf.d/private/x", "ignored = true", 11),
        ],
        revision: 12,
    };
    let content = source.content(listing).unwrap();
    let names: Vec<_> = content.layers.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "etcd:app/conf.d/00-base.toml",
            "etcd:app/conf.d/10-region.yaml"
        ]
    );
    assert_eq!(content.layers[1].format, Format::Yaml);
    assert_eq!(content.identity.path, "etcd:app/conf.d/*");
    assert_eq!(content.identity.revision, Some(9));

    // The default status prefix of a prefix lies outside it, and is skipped when inside.
    assert!(!"app/conf.d.status/n1".starts_with("app/conf.d/"));
    let inside = EtcdSource::prefix(client(), "app/").exclude("app/status/");
    assert!(inside.is_excluded("app/status/n1"));
    assert!(!inside.is_excluded("app/config.toml"));
}

#[test]
fn an_admitted_node_reads_the_candidate_hashed_with_its_key_and_others_the_stable_value() {
    let source = EtcdSource::new(client(), "k").for_node("n1");
    let state = RolloutState::new("r", 5, "sha", vec![vec!["n1".into()], vec!["n2".into()]]);
    let rollout = entry("k/rollout", &serde_json::to_string(&state).unwrap(), 9);
    let candidate = entry("k/rollout/candidate", "a = 2", 9);
    let (read, _) = admitted_candidate("n1", Some(rollout.clone()), Some(candidate.clone()))
        .expect("n1 is admitted");
    assert_eq!(read.key, "k/rollout/candidate");
    assert_eq!(
        admitted_candidate("n2", Some(rollout), Some(candidate)),
        None
    );
    // The same bytes read from the candidate and from the key are two identities, so the
    // node records the switch to the key (as unchanged) when the rollout completes.
    let as_candidate = source.content_of(vec![read]).unwrap().identity.sha256;
    let as_key = source
        .content_of(vec![entry("k", "a = 2", 10)])
        .unwrap()
        .identity
        .sha256;
    assert_ne!(as_candidate, as_key);
    assert_eq!(as_key, sha256_hex(b"a = 2"));
}

#[test]
fn a_kept_version_is_this_sources_when_it_reads_every_layer() {
    let key = EtcdSource::new(client(), "k").node_override("n1");
    for layer in ["etcd:k", "etcd:k/nodes/n1", "etcd:k/rollout/candidate"] {
        assert!(key.reads_layer(layer), "{layer}");
    }
    for layer in ["etcd:k/nodes/n2", "etcd:other", "k", "etcd:k/change"] {
        assert!(!key.reads_layer(layer), "{layer}");
    }
    assert!(!EtcdSource::new(client(), "k").reads_layer("etcd:k/nodes/n1"));
    let prefix = EtcdSource::prefix(client(), "p/").exclude("p/private/");
    assert!(prefix.reads_layer("etcd:p/a.toml"));
    assert!(!prefix.reads_layer("etcd:p/private/x"));
    assert!(!prefix.reads_layer("etcd:q/a.toml"));
}

#[test]
fn moving_text_between_keys_changes_the_hash() {
    let source = EtcdSource::prefix(client(), "p/");
    let hash = |a: &str, b: &str| {
        let listing = Listing {
            entries: vec![entry("p/a", a, 1), entry("p/b", b, 2)],
            revision: 3,
        };
        source.content(listing).unwrap().identity.sha256
    };
    assert_ne!(hash("x = 1\n", "y = 2\n"), hash("x = 1\ny = 2\n", ""));
}

#[test]
fn a_missing_key_a_huge_value_and_bad_utf8_are_errors_naming_the_key() {
    let source = EtcdSource::new(client(), "app/config").max_bytes(8);
    // What the key holds as of store revision 4.
    let content = |entries| {
        source.content(Listing {
            entries,
            revision: 4,
        })
    };
    let missing = content(vec![]).unwrap_err();
    assert_eq!(
        missing.to_string(),
        "etcd:app/config: the key does not exist in etcd (store revision 4)"
    );
    assert_eq!(missing.kind, SourceErrorKind::NotFound);
    let huge = content(vec![entry("app/config", "workers = 1000\n", 3)]).unwrap_err();
    assert_eq!(
        huge.to_string(),
        "etcd:app/config: is 15 bytes, above the limit of 8 bytes"
    );
    assert_eq!(huge.kind, SourceErrorKind::TooLarge);
    let bad = content(vec![Entry {
        key: "app/config".into(),
        value: vec![b'a', 0xff],
        mod_revision: 3,
    }])
    .unwrap_err();
    assert_eq!(
        bad.to_string(),
        "etcd:app/config: not valid UTF-8 (byte offset 1, revision 3)"
    );
    assert_eq!(bad.kind, SourceErrorKind::NotText);
    // A single key's hash is the hash of its bytes, as for a file.
    let ok = content(vec![entry("app/config", "a = 1", 3)]).unwrap();
    assert_eq!(ok.identity, {
        let mut id = SourceIdentity::new("etcd:app/config", b"a = 1");
        id.revision = Some(3);
        id
    });
    assert_eq!(ok.layers[0].format, Format::Toml);
}
