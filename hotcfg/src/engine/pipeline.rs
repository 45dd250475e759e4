//! What a candidate goes through before anything is applied: load (parse, validate), decide
//! (diff, policy) and the order of the scopes to run. One [`Pipeline`] value serves the engine
//! and the operator commands, so a dry run on the command line decides as the program would.

use std::fmt;
use std::sync::Arc;

use crate::diff::{Change, Diff};
use crate::engine::decide::{decide, Decided};
use crate::engine::scope_graph::ScopeGraph;
use crate::hot_reload::{HotConfig, HotReload};
use crate::load::{locate_violations, ConfigError, Hints, Loader};
use crate::plan::{Plan, PrepareVerdict, RestartPolicy};
use crate::source::{SourceContent, SourceError};
use crate::validate::Violations;

/// Checks a candidate beyond its types (see [`Validate`](crate::Validate)).
type Validator<C> = Arc<dyn Fn(&C, &mut Violations) + Send + Sync>;

/// The stages before the commit: the loader, the validator, the restart policy and the scope
/// dependencies. Give the same value to the engine
/// ([`ReloaderBuilder::pipeline`](crate::ReloaderBuilder::pipeline)) and to the operator
/// commands (`cli::Cli::from`), so that both decide alike.
///
/// ```
/// use hotcfg::{FileSource, HotReload, Pipeline, Reloader, RestartPolicy, Violations};
///
/// #[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize, HotReload)]
/// struct Config {
///     #[reload(scope = "limits")]
///     max: u32,
///     #[reload(scope = "loops")]
///     loops: Vec<String>,
/// }
///
/// fn validate(config: &Config, v: &mut Violations) {
///     v.check(config.max >= 1, "max", "must be at least 1");
/// }
///
/// let pipeline = Pipeline::<Config>::new()
///     .validator(validate)
///     .policy(RestartPolicy::Defer)
///     .scope_depends_on("loops", &["limits"]);
///
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("app.toml");
/// std::fs::write(&path, "max = 2\nloops = []\n")?;
/// let reloader = Reloader::builder(FileSource::new(&path))
///     .pipeline(pipeline.clone())
///     .build()?;
/// assert_eq!(reloader.policy(), RestartPolicy::Defer);
///
/// // The same rules refuse a bad candidate anywhere.
/// std::fs::write(&path, "max = 0\nloops = []\n")?;
/// let content = hotcfg::Source::read(&FileSource::new(&path))?;
/// let error = pipeline.load(&content).unwrap_err();
/// assert!(error.to_string().contains("`max`: must be at least 1"), "{error}");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Pipeline<C> {
    loader: Loader<C>,
    validator: Option<Validator<C>>,
    policy: RestartPolicy,
    scopes: ScopeGraph,
}

impl<C: Clone> Clone for Pipeline<C> {
    fn clone(&self) -> Self {
        Pipeline {
            loader: self.loader.clone(),
            validator: self.validator.clone(),
            policy: self.policy,
            scopes: self.scopes.clone(),
        }
    }
}

impl<C> fmt::Debug for Pipeline<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pipeline")
            .field("loader", &self.loader)
            .field("validator", &self.validator.is_some())
            .field("policy", &self.policy)
            .field("scopes", &self.scopes)
            .finish()
    }
}

impl<C> Default for Pipeline<C> {
    fn default() -> Self {
        Pipeline {
            loader: Loader::default(),
            validator: None,
            policy: RestartPolicy::default(),
            scopes: ScopeGraph::default(),
        }
    }
}

impl<C: HotConfig> Pipeline<C> {
    /// A plain loader, no validation, the reject policy and no scope dependencies.
    pub fn new() -> Self {
        Self::default()
    }

    /// Parses with `loader` (defaults, environment overlay, limits).
    pub fn loader(mut self, loader: Loader<C>) -> Self {
        self.loader = loader;
        self
    }

    /// Checks every candidate with `validate` (e.g. `Config::validate` from a
    /// [`Validate`](crate::Validate) impl). Without one, every well-typed candidate is accepted.
    pub fn validator(
        mut self,
        validate: impl Fn(&C, &mut Violations) + Send + Sync + 'static,
    ) -> Self {
        self.validator = Some(Arc::new(validate));
        self
    }

    /// What to do with restart-only changes (default [`RestartPolicy::Reject`]).
    pub fn policy(mut self, policy: RestartPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Declares that a change in `scope` also runs the handlers of `dependencies`, and that those
    /// run first (a change of loop definitions re-applies the limits and templates they use).
    pub fn scope_depends_on(mut self, scope: &str, dependencies: &[&str]) -> Self {
        for dep in dependencies {
            self.scopes.add(scope, dep);
        }
        self
    }

    /// The restart policy in force.
    pub fn restart_policy(&self) -> RestartPolicy {
        self.policy
    }

    /// Parses and validates a candidate; problems carry file, line and key. Parse errors about
    /// `#[reload(secret)]` fields do not quote the value.
    pub fn load(&self, content: &SourceContent) -> Result<C, ConfigError> {
        let hints = Hints {
            schema: C::schema(),
            is_secret: &|key| is_secret_key::<C>(key),
            closest_key: &|key| crate::load::closest_key::<C>(key),
        };
        let candidate = self.loader.parse_with(content, &hints)?;
        if let Some(validate) = &self.validator {
            let mut violations = Violations::default();
            validate(&candidate, &mut violations);
            if !violations.is_empty() {
                return Err(locate_violations(&violations, content));
            }
        }
        Ok(candidate)
    }

    /// What identifies `content` as loaded: its hash, with the environment overlay's variables
    /// (the engine's "unchanged" check compares these).
    pub(crate) fn content_key(&self, content: &SourceContent) -> String {
        self.loader.content_key(content)
    }

    /// The decision for a loaded candidate over `live`; `referenced` are changes to files the
    /// configuration names.
    pub(crate) fn decide(
        &self,
        live: &C,
        candidate: C,
        referenced: Vec<Change>,
    ) -> (Diff, Decided<C>) {
        decide(live, candidate, self.policy, referenced)
    }

    /// The scopes whose handlers run for `diff`, dependencies first.
    pub(crate) fn scope_order(&self, diff: &Diff) -> Vec<String> {
        self.scopes.order(diff.scopes())
    }

    pub(crate) fn scope_graph(&self) -> &ScopeGraph {
        &self.scopes
    }

    /// A dry run of `content` over `live`. `referenced` gives the changes to files a candidate
    /// names; `handlers` keeps the scopes that would run from the ordered list. (The operator
    /// commands' plan; the engine's goes through [`Pipeline::plan_prepared`].)
    #[cfg(feature = "cli")]
    pub(crate) fn plan(
        &self,
        live: &C,
        content: Result<SourceContent, SourceError>,
        referenced: impl FnOnce(&C) -> Vec<Change>,
        handlers: impl FnOnce(Vec<String>) -> Vec<String>,
    ) -> Plan {
        self.plan_prepared(live, content, referenced, handlers, |_, _, _| None)
    }

    /// [`Pipeline::plan`], and for an apply `prepare` asks the handlers of the kept scopes about
    /// the configuration that would be stored and its diff ([`Plan::prepare`]).
    pub(crate) fn plan_prepared(
        &self,
        live: &C,
        content: Result<SourceContent, SourceError>,
        referenced: impl FnOnce(&C) -> Vec<Change>,
        handlers: impl FnOnce(Vec<String>) -> Vec<String>,
        prepare: impl FnOnce(&C, &Diff, &[String]) -> Option<Vec<PrepareVerdict>>,
    ) -> Plan {
        let content = match content {
            Ok(content) => content,
            Err(err) => return Plan::invalid(None, err.into()),
        };
        let identity = Some(content.identity.clone());
        let candidate = match self.load(&content) {
            Ok(candidate) => candidate,
            Err(err) => return Plan::invalid(identity, err),
        };
        let referenced = referenced(&candidate);
        let (changes, decided) = self.decide(live, candidate, referenced);
        let handlers_for = |diff: &Diff| handlers(self.scope_order(diff));
        Plan::prepared(identity, changes, decided, handlers_for, prepare)
    }
}

/// Whether `key` is a secret field, lies inside one, or holds one (a section or map entry whose
/// value includes a secret): an error about it could quote the secret.
fn is_secret_key<C: HotReload>(key: &[String]) -> bool {
    C::schema().iter().filter(|f| f.secret).any(|field| {
        field
            .path
            .split('.')
            .zip(key)
            .all(|(schema, key)| schema == "*" || schema.trim_matches('"') == key)
    })
}
