//! The result of a verification: every check, by name, with its outcome.

use serde::Serialize;

/// What became of one check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", content = "detail", rename_all = "lowercase")]
pub enum Outcome {
    /// The check passed; the text says what was found.
    Pass(String),
    /// The check failed; the text says what was expected and what was found.
    Fail(String),
    /// The check did not apply (nothing was expected, or its input was absent).
    Skip(String),
}

/// One named check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    /// Stable dotted name, e.g. `report.signature` or `chain.ask_signed_by_ark`.
    pub name: &'static str,
    /// The outcome with its explanation.
    #[serde(flatten)]
    pub outcome: Outcome,
}

/// Every check of one verification, in the order they were evaluated.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Verdict {
    /// The checks.
    pub checks: Vec<Check>,
}

impl Verdict {
    /// True when no check failed.
    pub fn passed(&self) -> bool {
        !self
            .checks
            .iter()
            .any(|c| matches!(c.outcome, Outcome::Fail(_)))
    }

    /// The checks that failed.
    pub fn failures(&self) -> impl Iterator<Item = &Check> {
        self.checks
            .iter()
            .filter(|c| matches!(c.outcome, Outcome::Fail(_)))
    }

    /// The outcome of the check called `name`, if it was evaluated.
    pub fn get(&self, name: &str) -> Option<&Outcome> {
        self.checks
            .iter()
            .find(|c| c.name == name)
            .map(|c| &c.outcome)
    }

    pub(crate) fn pass(&mut self, name: &'static str, detail: impl Into<String>) {
        self.checks.push(Check {
            name,
            outcome: Outcome::Pass(detail.into()),
        });
    }

    pub(crate) fn fail(&mut self, name: &'static str, detail: impl Into<String>) {
        self.checks.push(Check {
            name,
            outcome: Outcome::Fail(detail.into()),
        });
    }

    pub(crate) fn skip(&mut self, name: &'static str, detail: impl Into<String>) {
        self.checks.push(Check {
            name,
            outcome: Outcome::Skip(detail.into()),
        });
    }

    /// Records `Pass(ok)` when `result` is `Ok`, else `Fail` with the error.
    pub(crate) fn record<E: core::fmt::Display>(
        &mut self,
        name: &'static str,
        result: Result<String, E>,
    ) -> bool {
        match result {
            Ok(detail) => {
                self.pass(name, detail);
                true
            }
            Err(e) => {
                self.fail(name, e.to_string());
                false
            }
        }
    }
}
