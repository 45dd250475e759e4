//! Loading the same TOML text (the 1,000-leaf fixture, about 21 KB) into the same typed value,
//! against the configuration crates a user would pick (issue 19), interleaved in one run.
//!
//! What each contender does:
//! * `hotcfg reload_now`: a whole reload from an in-memory source alternating two versions that
//!   differ in one leaf: read and hash, bounded parse, merge and extract (figment), diff, plan,
//!   one atomic store, history and metrics; no handlers, no audit log;
//! * `hotcfg parse`: hotcfg's parse step alone (`Loader::parse`): bounded parse, merge, extract
//!   noting unknown keys;
//! * `hotcfg parse, unknown keys allowed`: the same without the unknown-key check
//!   (`Loader::allow_unknown_keys`): the difference is what the check costs;
//! * `figment extract`: `Figment::from(Toml::string(text)).extract()`;
//! * `config-rs`: `Config::builder().add_source(File::from_str(text, Toml)).build()` then
//!   `try_deserialize()`;
//! * `toml 0.8 from_str`, `toml 1.x from_str`: the bare typed parse, no layering, no
//!   provenance in errors.
//!
//! `cargo bench -p hotcfg-benches --bench peers_load`

use std::cell::Cell;
use std::hint::black_box;

use figment::providers::{Format as _, Toml};
use figment::Figment;
use hotcfg::{Loader, ReloadResult, Reloader, Source};
use hotcfg_benches::fixtures::{changed, toml_text, Fixture, Leaf1000};
use hotcfg_benches::{benchmarking, compare, Contender, MemorySource};

fn config_rs(text: &str) -> Leaf1000 {
    config::Config::builder()
        .add_source(config::File::from_str(text, config::FileFormat::Toml))
        .build()
        .expect("valid")
        .try_deserialize()
        .expect("valid")
}

fn main() {
    let rounds = if benchmarking() { 400 } else { 3 };
    let base = Leaf1000::sample(11);
    let texts = vec![toml_text(&base), toml_text(&changed(&base, 1))];
    let source = MemorySource::alternating(texts.clone());
    let contents = [source.read().unwrap(), source.read().unwrap()];
    let loader = Loader::<Leaf1000>::new();
    let lenient = Loader::<Leaf1000>::new().allow_unknown_keys();
    let reloader = Reloader::<Leaf1000>::builder(MemorySource::alternating(texts.clone()))
        .build()
        .expect("the fixture loads");
    let event = reloader.reload_now();
    assert!(
        matches!(&event.result, ReloadResult::Applied { applied, .. } if !applied.is_empty()),
        "every reload applies: {:?}",
        event.result
    );
    // Every contender reads the same value from the same text.
    let expected = changed(&base, 1);
    assert_eq!(loader.parse(&contents[1]).expect("valid"), expected);
    assert_eq!(config_rs(&texts[1]), expected);
    assert_eq!(
        toml08::from_str::<Leaf1000>(&texts[1]).expect("valid"),
        expected
    );
    assert_eq!(
        toml::from_str::<Leaf1000>(&texts[1]).expect("valid"),
        expected
    );

    let turn = Cell::new(0usize);
    let text = || {
        turn.set(turn.get() + 1);
        &texts[turn.get() % 2]
    };
    let mut reload = || {
        black_box(reloader.reload_now());
    };
    let mut parse = || {
        black_box(loader.parse(&contents[turn.get() % 2]).expect("valid"));
    };
    let mut parse_lenient = || {
        black_box(lenient.parse(&contents[turn.get() % 2]).expect("valid"));
    };
    let mut figment = || {
        let value: Leaf1000 = Figment::from(Toml::string(text()))
            .extract()
            .expect("valid");
        black_box(value);
    };
    let mut config = || {
        black_box(config_rs(text()));
    };
    let mut toml08 = || {
        black_box(toml08::from_str::<Leaf1000>(text()).expect("valid"));
    };
    let mut toml1 = || {
        black_box(toml::from_str::<Leaf1000>(text()).expect("valid"));
    };
    compare(
        "load, 1,000 leaves from TOML",
        rounds,
        0,
        &mut [
            Contender {
                name: "hotcfg reload_now",
                batch: 1,
                run: &mut reload,
            },
            Contender {
                name: "hotcfg parse",
                batch: 1,
                run: &mut parse,
            },
            Contender {
                name: "hotcfg parse, unknown keys allowed",
                batch: 1,
                run: &mut parse_lenient,
            },
            Contender {
                name: "figment extract",
                batch: 1,
                run: &mut figment,
            },
            Contender {
                name: "config-rs",
                batch: 1,
                run: &mut config,
            },
            Contender {
                name: "toml 0.8 from_str",
                batch: 1,
                run: &mut toml08,
            },
            Contender {
                name: "toml 1.x from_str",
                batch: 1,
                run: &mut toml1,
            },
        ],
    );
}
