//! Per-test outcomes of a `cargo xtask test` run and its closing summary.

/// The first word of an output line by which a test that found at run time
/// that it cannot run (a missing oracle, say) reports itself as skipped.
pub const SKIP_MARKER: &str = "SKIPPED";

/// How many test names a skipped or failed group lists before it abbreviates.
const NAMES_SHOWN: usize = 10;

/// Outcomes collected from every group of tests.
#[derive(Default)]
pub struct Report {
    passed: usize,
    failed: Vec<Failure>,
    skipped: Vec<SkippedGroup>,
}

struct Failure {
    test: String,
    reason: String,
}

/// Tests that share one reason for not running.
struct SkippedGroup {
    reason: String,
    tests: Vec<String>,
}

impl Report {
    pub fn pass(&mut self) {
        self.passed += 1;
    }

    pub fn fail(&mut self, test: impl Into<String>, reason: impl Into<String>) {
        self.failed.push(Failure {
            test: test.into(),
            reason: reason.into(),
        });
    }

    /// Records a test that did not run, under `reason`. Tests with the same
    /// reason are listed together in the summary.
    pub fn skip(&mut self, reason: &str, test: impl Into<String>) {
        let test = test.into();
        match self.skipped.iter_mut().find(|group| group.reason == reason) {
            Some(group) => group.tests.push(test),
            None => self.skipped.push(SkippedGroup {
                reason: reason.to_owned(),
                tests: vec![test],
            }),
        }
    }

    /// Records a test that passed, or that skipped itself by printing a
    /// `SKIPPED` line, as found in its captured stdout and stderr.
    pub fn pass_or_self_skip(&mut self, test: impl Into<String>, output: &str) {
        match self_skip_reason(output) {
            Some(reason) => self.skip(&format!("skipped itself: {reason}"), test),
            None => self.pass(),
        }
    }

    pub fn passed(&self) -> usize {
        self.passed
    }

    pub fn failed(&self) -> usize {
        self.failed.len()
    }

    pub fn skipped(&self) -> usize {
        self.skipped.iter().map(|group| group.tests.len()).sum()
    }

    /// Prints one line per skipped group and per failed test, then the
    /// closing count line that CI reads.
    pub fn print_summary(&self) {
        println!("== summary");
        for group in &self.skipped {
            let count = group.tests.len();
            let noun = if count == 1 { "test" } else { "tests" };
            println!("skipped {count} {noun}: {}", group.reason);
            println!("    {}", abbreviate(&group.tests));
        }
        for failure in &self.failed {
            println!("FAILED {}: {}", failure.test, failure.reason);
        }
        println!("{}", self.count_line());
    }

    /// Returns the closing line, `N passed, N failed, N skipped`.
    pub fn count_line(&self) -> String {
        format!(
            "{} passed, {} failed, {} skipped",
            self.passed(),
            self.failed(),
            self.skipped()
        )
    }
}

/// Returns the reason from the first line that starts with the word
/// `SKIPPED`, with any `:` after the word removed.
pub fn self_skip_reason(output: &str) -> Option<String> {
    output.lines().find_map(|line| {
        let rest = line.strip_prefix(SKIP_MARKER)?;
        if !(rest.is_empty() || rest.starts_with([' ', ':'])) {
            return None;
        }
        let reason = rest.trim_start_matches([' ', ':']).trim();
        Some(if reason.is_empty() {
            "no reason given".to_owned()
        } else {
            reason.to_owned()
        })
    })
}

fn abbreviate(names: &[String]) -> String {
    let mut text = names
        .iter()
        .take(NAMES_SHOWN)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if names.len() > NAMES_SHOWN {
        text.push_str(&format!(" and {} more", names.len() - NAMES_SHOWN));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_each_outcome_once() {
        let mut report = Report::default();
        report.pass();
        report.pass();
        report.fail("a b", "panicked");
        report.skip("not root", "c d");
        report.skip("not root", "c e");
        report.skip("no lab", "f g");

        assert_eq!(report.passed(), 2);
        assert_eq!(report.failed(), 1);
        assert_eq!(report.skipped(), 3);
        assert_eq!(report.count_line(), "2 passed, 1 failed, 3 skipped");
    }

    #[test]
    fn skips_grouped_by_reason() {
        let mut report = Report::default();
        report.skip("not root", "x");
        report.skip("no lab", "y");
        report.skip("not root", "z");

        assert_eq!(report.skipped.len(), 2);
        assert_eq!(report.skipped[0].tests, ["x", "z"]);
        assert_eq!(report.skipped[1].tests, ["y"]);
    }

    #[test]
    fn self_skip_lines_recognised() {
        let cases = [
            (
                "running 1 test\nSKIPPED x: go not found\n",
                Some("x: go not found"),
            ),
            ("SKIPPED: no protoc\n", Some("no protoc")),
            ("SKIPPED\n", Some("no reason given")),
            ("SKIPPEDNESS is a word\n", None),
            ("  SKIPPED indented\n", None),
            ("test a ... ok\n", None),
        ];
        for (output, reason) in cases {
            assert_eq!(self_skip_reason(output).as_deref(), reason, "{output:?}");
        }

        let mut report = Report::default();
        report.pass_or_self_skip("a", "SKIPPED a: no go\n");
        report.pass_or_self_skip("b", "ok\n");
        assert_eq!(report.count_line(), "1 passed, 0 failed, 1 skipped");
    }

    #[test]
    fn long_name_lists_abbreviated() {
        let names: Vec<String> = (0..12).map(|i| format!("t{i}")).collect();
        let text = abbreviate(&names);

        assert!(text.starts_with("t0, t1,"), "{text}");
        assert!(text.ends_with("t9 and 2 more"), "{text}");
    }
}
