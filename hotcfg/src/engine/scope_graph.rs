//! Which scopes depend on which: a change in a scope also runs the handlers of the scopes it
//! depends on, and those run first.

use std::collections::{BTreeMap, BTreeSet};

/// Dependencies between scopes, declared with
/// [`Pipeline::scope_depends_on`](crate::Pipeline::scope_depends_on).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct ScopeGraph {
    depends_on: BTreeMap<String, BTreeSet<String>>,
}

impl ScopeGraph {
    /// Declares that `scope` depends on `on`.
    pub(crate) fn add(&mut self, scope: &str, on: &str) {
        self.depends_on
            .entry(scope.to_string())
            .or_default()
            .insert(on.to_string());
    }

    /// Every scope named in a dependency.
    pub(crate) fn scopes(&self) -> impl Iterator<Item = &str> {
        self.depends_on
            .keys()
            .chain(self.depends_on.values().flatten())
            .map(String::as_str)
    }

    /// Fails with the cycle when dependencies loop.
    pub(crate) fn check_acyclic(&self) -> Result<(), String> {
        let all: BTreeSet<&str> = self.scopes().collect();
        self.try_order(all.into_iter()).map(|_| ())
    }

    /// The scopes to run for `touched`: each touched scope and, transitively, the scopes it
    /// depends on, ordered so that a scope's dependencies come before it.
    pub(crate) fn order<'a>(&self, touched: impl Iterator<Item = &'a str>) -> Vec<String> {
        self.try_order(touched).unwrap_or_default()
    }

    fn try_order<'a>(&self, roots: impl Iterator<Item = &'a str>) -> Result<Vec<String>, String> {
        let mut walk = Walk::default();
        for root in roots {
            walk.visit(self, root)?;
        }
        Ok(walk.out)
    }
}

/// A depth-first topological sort in progress; `visiting` catches cycles.
#[derive(Default)]
struct Walk {
    visiting: Vec<String>,
    done: BTreeSet<String>,
    out: Vec<String>,
}

impl Walk {
    fn visit(&mut self, graph: &ScopeGraph, scope: &str) -> Result<(), String> {
        if self.done.contains(scope) {
            return Ok(());
        }
        if let Some(at) = self.visiting.iter().position(|s| s == scope) {
            let mut cycle = self.visiting[at..].to_vec();
            cycle.push(scope.to_string());
            return Err(cycle.join(" -> "));
        }
        self.visiting.push(scope.to_string());
        for dep in graph.depends_on.get(scope).into_iter().flatten() {
            self.visit(graph, dep)?;
        }
        self.visiting.pop();
        self.done.insert(scope.to_string());
        self.out.push(scope.to_string());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph(edges: &[(&str, &str)]) -> ScopeGraph {
        let mut graph = ScopeGraph::default();
        for (scope, on) in edges {
            graph.add(scope, on);
        }
        graph
    }

    #[test]
    fn dependencies_come_first_and_each_scope_once() {
        let graph = graph(&[
            ("loops", "limits"),
            ("loops", "templates"),
            ("templates", "limits"),
        ]);
        assert_eq!(
            graph.order(["loops", "limits"].into_iter()),
            ["limits", "templates", "loops"]
        );
        assert_eq!(graph.order(["auth"].into_iter()), ["auth"]);
    }

    #[test]
    fn a_cycle_is_named() {
        let graph = graph(&[("a", "b"), ("b", "c"), ("c", "a")]);
        assert_eq!(graph.check_acyclic(), Err("a -> b -> c -> a".to_string()));
    }
}
