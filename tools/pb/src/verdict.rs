//! Judging boots against the expectations of the run directives. Pure functions: each returns
//! the failures as the messages `pb` prints (without the `pb: ` prefix).

/// What every boot must satisfy.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Expectations {
    pub exit: i32,
    pub console: Vec<String>,
    pub reject: Vec<String>,
    pub same_lines: Option<String>,
}

/// Failures of one boot that exited with `exit` after printing `console`.
pub fn check_boot(exp: &Expectations, exit: i32, console: &str) -> Vec<String> {
    let mut failures = Vec::new();
    if exit != exp.exit {
        failures.push(format!("expected exit {}, got {exit}", exp.exit));
    }
    for needle in &exp.console {
        if !console.contains(needle.as_str()) {
            failures.push(format!("console lacks {needle:?}"));
        }
    }
    for needle in &exp.reject {
        if console.contains(needle.as_str()) {
            failures.push(format!("console contains rejected {needle:?}"));
        }
    }
    failures
}

/// The lines of one boot's console that start with `prefix`.
pub fn prefixed<'a>(prefix: &str, lines: &'a [String]) -> Vec<&'a str> {
    lines
        .iter()
        .map(String::as_str)
        .filter(|l| l.starts_with(prefix))
        .collect()
}

/// Checks that every boot has lines starting with `prefix` and that they are identical across
/// boots (`boots[i]` holds boot i+1's console lines). Returns the first failure.
pub fn compare_same_lines(prefix: &str, boots: &[Vec<String>]) -> Result<(), String> {
    let selected: Vec<Vec<&str>> = boots.iter().map(|b| prefixed(prefix, b)).collect();
    if let Some(i) = selected.iter().position(Vec::is_empty) {
        return Err(format!("boot {} printed no {prefix:?} lines", i + 1));
    }
    let Some((first, rest)) = selected.split_first() else {
        return Ok(());
    };
    for (i, other) in rest.iter().enumerate() {
        let n = i + 2;
        if let Some((k, (a, b))) = first
            .iter()
            .zip(other.iter())
            .enumerate()
            .find(|(_, (a, b))| a != b)
        {
            return Err(format!(
                "boots 1 and {n} differ on {prefix:?} lines: line {} is {a:?} vs {b:?}",
                k + 1
            ));
        }
        if first.len() != other.len() {
            let (longer, extra) = if first.len() > other.len() {
                (1, first[other.len()])
            } else {
                (n, other[first.len()])
            };
            return Err(format!(
                "boots 1 and {n} differ on {prefix:?} lines: {} vs {} lines; boot {longer} \
                 also has {extra:?}",
                first.len(),
                other.len()
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(text: &str) -> Vec<String> {
        text.lines().map(str::to_string).collect()
    }

    #[test]
    fn exit_and_console() {
        let exp = Expectations {
            exit: 0,
            console: vec!["test result: ok".into(), "booted".into()],
            reject: vec!["panicked".into()],
            same_lines: None,
        };
        assert!(check_boot(&exp, 0, "booted\ntest result: ok. 3 passed").is_empty());
        assert_eq!(
            check_boot(&exp, 1, "booted\nkernel panicked at x"),
            [
                "expected exit 0, got 1",
                "console lacks \"test result: ok\"",
                "console contains rejected \"panicked\"",
            ]
        );
        let exp3 = Expectations {
            exit: 3,
            ..Default::default()
        };
        assert!(check_boot(&exp3, 3, "").is_empty());
        assert_eq!(check_boot(&exp3, 0, ""), ["expected exit 3, got 0"]);
    }

    #[test]
    fn same_lines_identical() {
        let a = lines("boot\n@det a=1\nnoise 123\n@det b=2\n");
        let b = lines("boot\n@det a=1\nnoise 456\n@det b=2\n");
        assert_eq!(
            compare_same_lines("@det", &[a.clone(), b.clone(), a]),
            Ok(())
        );
        // A single boot only needs the lines to be present.
        assert_eq!(compare_same_lines("@det", &[b]), Ok(()));
        assert_eq!(compare_same_lines("@det", &[]), Ok(()));
    }

    #[test]
    fn same_lines_differ() {
        let a = lines("@det a=1\n@det b=2\n");
        let b = lines("@det a=1\n@det b=3\n");
        assert_eq!(
            compare_same_lines("@det", &[a.clone(), a.clone(), b.clone()]),
            Err(
                "boots 1 and 3 differ on \"@det\" lines: line 2 is \"@det b=2\" vs \"@det b=3\""
                    .into()
            )
        );
        let short = lines("@det a=1\n");
        assert_eq!(
            compare_same_lines("@det", &[a.clone(), short.clone()]),
            Err("boots 1 and 2 differ on \"@det\" lines: 2 vs 1 lines; boot 1 also has \"@det b=2\""
                .into())
        );
        assert_eq!(
            compare_same_lines("@det", &[short, a]),
            Err("boots 1 and 2 differ on \"@det\" lines: 1 vs 2 lines; boot 2 also has \"@det b=2\""
                .into())
        );
    }

    #[test]
    fn same_lines_missing() {
        let a = lines("@det a=1\n");
        let none = lines("other\n det not at start\n");
        assert_eq!(
            compare_same_lines("@det", &[a, none]),
            Err("boot 2 printed no \"@det\" lines".into())
        );
    }
}
