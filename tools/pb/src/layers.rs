//! The module import graph of a Rust crate, checked for circles and against a layer order.
//!
//! `pb layers` reads every `.rs` file of a crate's source tree, names each file as the module it
//! is (`trace/attach.rs` is `trace::attach`, `trace/mod.rs` is `trace`), collects every path it
//! names through `crate::`, `super::` or `self::` (in `use` trees and inline), and resolves each
//! to the longest module prefix it starts with. That gives one edge per (module, module) pair.
//!
//! Two rules are checked:
//!
//! 1. **No circle**: the graph has no cycle. Edges from a module to its own descendants are not
//!    counted (a parent declares and re-exports its children: a facade, not a dependency);
//!    edges from a child to an ancestor are.
//! 2. **Imports run downward** (when a layer order is given): every module belongs to the
//!    longest prefix listed in the order, and may name only modules of its own layer or one
//!    below. The crate root is exempt both ways: it hosts the crate-root macros (`println!`)
//!    and the test-runner attribute, and it declares every top-level module.
//!
//! Test-only code (`#[cfg(test)]` items, such as `mod tests { … }`) is not part of the graph:
//! a unit test may reach anything.
//!
//! The layer order is read from a fenced block tagged `layers` in a Markdown file (the
//! architecture document), so the document the reader sees is the rule the checker enforces:
//!
//! ````text
//! ```layers
//! arch drivers          <- bottom: one line per layer, module prefixes separated by spaces
//! bsp
//! trace trace::types    <- a prefix and a longer one may sit on different lines
//! ```
//! ````
//!
//! Pure: [`Graph::build`] takes file contents, so the tests feed it synthetic trees.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::Path;

use anyhow::{Context, Result, bail};

/// A module path inside the crate: `""` is the crate root, `"trace::attach"` a file.
pub type ModPath = String;

/// One edge: `from` names something in `to`, first at `line` of `from`'s file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Edge {
    pub from: ModPath,
    pub to: ModPath,
    pub line: usize,
}

/// What the checker found wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Violation {
    /// A cycle: each module of `cycle` names the next, the last names the first. `tangle` is
    /// every module of the strongly connected component it lies in (each reaches every other).
    Circle {
        cycle: Vec<ModPath>,
        tangle: Vec<ModPath>,
    },
    /// `edge.from` (layer `from_layer`) names `edge.to`, which sits higher (layer `to_layer`).
    Upward {
        edge: Edge,
        from_layer: usize,
        to_layer: usize,
    },
    /// A module that no line of the layer order covers.
    Unplaced(ModPath),
    /// A prefix in the layer order that names no module (the document has gone stale).
    Stale(String),
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Violation::Circle { cycle, tangle } => {
                write!(f, "import circle: {} -> {}", cycle.join(" -> "), cycle[0])?;
                if tangle.len() > cycle.len() {
                    write!(f, " (one of the circles among {})", tangle.join(", "))?;
                }
                Ok(())
            }
            Violation::Upward {
                edge,
                from_layer,
                to_layer,
            } => write!(
                f,
                "upward import: {} (layer {from_layer}) names {} (layer {to_layer}) at line {}",
                edge.from, edge.to, edge.line
            ),
            Violation::Unplaced(m) => {
                write!(f, "module {m} is in no layer: add it to the layer order")
            }
            Violation::Stale(p) => {
                write!(
                    f,
                    "the layer order names {p}, which is no module of the crate"
                )
            }
        }
    }
}

/// The layer order: prefixes, bottom layer first.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Layers(pub Vec<Vec<String>>);

impl Layers {
    /// Parse the first ```` ```layers ```` block of a Markdown document. Text after `#` or `<-`
    /// on a line is a comment.
    pub fn from_markdown(md: &str) -> Result<Layers> {
        let mut lines = md.lines();
        if !lines.by_ref().any(|l| l.trim() == "```layers") {
            bail!("no ```layers block in the document");
        }
        let mut layers = Vec::new();
        for line in lines {
            if line.trim_start().starts_with("```") {
                if layers.is_empty() {
                    bail!("the ```layers block is empty");
                }
                return Ok(Layers(layers));
            }
            let text = line.split(['#', '<']).next().unwrap_or("");
            let prefixes: Vec<String> = text.split_whitespace().map(str::to_string).collect();
            if !prefixes.is_empty() {
                layers.push(prefixes);
            }
        }
        bail!("the ```layers block is not closed")
    }

    /// The layer of `module`: that of the longest listed prefix it starts with.
    pub fn layer_of(&self, module: &str) -> Option<usize> {
        let mut best: Option<(usize, usize)> = None;
        for (rank, prefixes) in self.0.iter().enumerate() {
            for p in prefixes {
                if is_prefix(p, module) && best.is_none_or(|(len, _)| p.len() > len) {
                    best = Some((p.len(), rank));
                }
            }
        }
        best.map(|(_, rank)| rank)
    }
}

/// Is module path `p` equal to `m` or one of its ancestors?
fn is_prefix(p: &str, m: &str) -> bool {
    p.is_empty() || m == p || (m.starts_with(p) && m[p.len()..].starts_with("::"))
}

/// The module graph of one crate.
#[derive(Clone, Debug, Default)]
pub struct Graph {
    pub modules: BTreeSet<ModPath>,
    pub edges: Vec<Edge>,
}

impl Graph {
    /// Build the graph from `(path relative to the source root, contents)` pairs. The crate root
    /// is `lib.rs` or `main.rs`.
    pub fn build(files: &[(String, String)]) -> Graph {
        let modules: BTreeSet<ModPath> = files.iter().map(|(p, _)| module_of(p)).collect();
        let mut edges: BTreeMap<(ModPath, ModPath), usize> = BTreeMap::new();
        for (path, text) in files {
            let from = module_of(path);
            for (segments, line) in paths_named(&strip_test_code(&strip_comments_and_strings(text)))
            {
                let Some(abs) = absolute(&from, &segments) else {
                    continue;
                };
                let to = longest_module(&modules, &abs);
                let counted = !to.is_empty() && to != from && !is_prefix(&from, &to);
                if counted {
                    edges.entry((from.clone(), to)).or_insert(line);
                }
            }
        }
        let edges = edges
            .into_iter()
            .map(|((from, to), line)| Edge { from, to, line })
            .collect();
        Graph { modules, edges }
    }

    /// Read every `.rs` file below `src` (the directory holding `lib.rs` or `main.rs`).
    pub fn read(src: &Path) -> Result<Graph> {
        let mut files = Vec::new();
        collect(src, src, &mut files)?;
        if !files.iter().any(|(p, _)| p == "lib.rs" || p == "main.rs") {
            bail!("{} has no lib.rs or main.rs", src.display());
        }
        Ok(Graph::build(&files))
    }

    /// Every violation: circles, then (with `layers`) upward edges, unplaced modules and stale
    /// prefixes.
    pub fn check(&self, layers: Option<&Layers>) -> Vec<Violation> {
        let mut out: Vec<Violation> = self
            .circles()
            .into_iter()
            .map(|(cycle, tangle)| Violation::Circle { cycle, tangle })
            .collect();
        let Some(layers) = layers else { return out };
        for m in self.modules.iter().filter(|m| !m.is_empty()) {
            if layers.layer_of(m).is_none() {
                out.push(Violation::Unplaced(m.clone()));
            }
        }
        for p in layers.0.iter().flatten() {
            if !self.modules.iter().any(|m| is_prefix(p, m)) {
                out.push(Violation::Stale(p.clone()));
            }
        }
        for e in &self.edges {
            if e.from.is_empty() {
                continue;
            }
            if let (Some(a), Some(b)) = (layers.layer_of(&e.from), layers.layer_of(&e.to))
                && b > a
            {
                out.push(Violation::Upward {
                    edge: e.clone(),
                    from_layer: a,
                    to_layer: b,
                });
            }
        }
        out
    }

    /// The graph's cycles: one per strongly connected component of more than one module, as a
    /// shortest cycle through it and the whole component.
    pub fn circles(&self) -> Vec<(Vec<ModPath>, Vec<ModPath>)> {
        let next = |m: &str| -> Vec<&str> {
            self.edges
                .iter()
                .filter(|e| e.from == m)
                .map(|e| e.to.as_str())
                .collect()
        };
        let mut out = Vec::new();
        let mut seen: BTreeSet<&str> = BTreeSet::new();
        for start in &self.modules {
            if seen.contains(start.as_str()) {
                continue;
            }
            // The component of `start`: modules reachable from it that also reach it.
            let fwd = reach(start, &next);
            let comp: Vec<&str> = fwd
                .iter()
                .copied()
                .filter(|m| reach(m, &next).contains(start.as_str()))
                .collect();
            seen.extend(comp.iter().copied());
            if comp.len() > 1 {
                let tangle = comp.iter().map(|m| m.to_string()).collect();
                out.push((cycle_through(start, &comp, &next), tangle));
            }
        }
        out
    }
}

/// Every module reachable from `from` (including itself).
fn reach<'a>(from: &'a str, next: &impl Fn(&str) -> Vec<&'a str>) -> BTreeSet<&'a str> {
    let mut seen = BTreeSet::from([from]);
    let mut todo = vec![from];
    while let Some(m) = todo.pop() {
        for n in next(m) {
            if seen.insert(n) {
                todo.push(n);
            }
        }
    }
    seen
}

/// A shortest cycle from `start` back to itself inside the component `comp` (breadth first).
fn cycle_through<'a>(
    start: &'a str,
    comp: &[&'a str],
    next: &impl Fn(&str) -> Vec<&'a str>,
) -> Vec<ModPath> {
    let mut parent: BTreeMap<&str, &str> = BTreeMap::new();
    let mut queue = std::collections::VecDeque::from([start]);
    while let Some(m) = queue.pop_front() {
        for n in next(m).into_iter().filter(|n| comp.contains(n)) {
            if n == start {
                let mut path = vec![m.to_string()];
                let mut at = m;
                while at != start {
                    at = parent[at];
                    path.push(at.to_string());
                }
                path.reverse();
                return path;
            }
            if !parent.contains_key(n) {
                parent.insert(n, m);
                queue.push_back(n);
            }
        }
    }
    comp.iter().map(|m| m.to_string()).collect()
}

fn collect(root: &Path, dir: &Path, out: &mut Vec<(String, String)>) -> Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .collect::<std::io::Result<_>>()?;
    entries.sort_by_key(|e| e.path());
    for entry in entries {
        let path = entry.path();
        if path.is_dir() {
            collect(root, &path, out)?;
        } else if path.extension().is_some_and(|e| e == "rs") {
            let rel = path.strip_prefix(root).expect("below root");
            let rel = rel.to_string_lossy().replace('\\', "/");
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("reading {}", path.display()))?;
            out.push((rel, text));
        }
    }
    Ok(())
}

/// The module a file is: `lib.rs`/`main.rs` -> `""`, `a/mod.rs` -> `a`, `a/b.rs` -> `a::b`.
/// Cargo's extra binaries, `bin/<name>.rs`, are crate roots too (`""`).
pub fn module_of(rel: &str) -> ModPath {
    let stem = rel.strip_suffix(".rs").unwrap_or(rel);
    let stem = stem.strip_suffix("/mod").unwrap_or(stem);
    let extra_bin = stem.strip_prefix("bin/").is_some_and(|b| !b.contains('/'));
    if stem == "lib" || stem == "main" || extra_bin {
        return String::new();
    }
    stem.replace('/', "::")
}

/// The absolute segments of `segments` (starting with `crate`, `super` or `self`) named from
/// module `from`; `None` when it climbs above the root. `self` is the file's module (for
/// `a/mod.rs`, `a`) and `super` its parent.
fn absolute(from: &str, segments: &[String]) -> Option<Vec<String>> {
    let mut base: Vec<String> = if from.is_empty() {
        Vec::new()
    } else {
        from.split("::").map(String::from).collect()
    };
    let mut rest = segments;
    match rest.first().map(String::as_str) {
        Some("crate") => {
            base.clear();
            rest = &rest[1..];
        }
        Some("self") => rest = &rest[1..],
        Some("super") => {
            while rest.first().map(String::as_str) == Some("super") {
                base.pop()?;
                rest = &rest[1..];
            }
        }
        _ => return None,
    }
    base.extend(rest.iter().filter(|s| s.as_str() != "self").cloned());
    Some(base)
}

/// The longest module that `abs` starts with (the root, `""`, if none).
fn longest_module(modules: &BTreeSet<ModPath>, abs: &[String]) -> ModPath {
    (0..=abs.len())
        .rev()
        .map(|n| abs[..n].join("::"))
        .find(|m| modules.contains(m))
        .unwrap_or_default()
}

/// Source with comments removed and string/char literal contents blanked (newlines kept, so
/// line numbers stay right).
pub fn strip_comments_and_strings(src: &str) -> String {
    let b: Vec<char> = src.chars().collect();
    let mut out = String::with_capacity(src.len());
    let mut i = 0;
    let keep_newlines = |s: &[char], out: &mut String| {
        out.extend(s.iter().filter(|c| **c == '\n'));
    };
    while i < b.len() {
        let c = b[i];
        let next = b.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < b.len() && b[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let (start, mut depth) = (i, 0usize);
            while i < b.len() {
                if b[i] == '/' && b.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 2;
                } else if b[i] == '*' && b.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
            keep_newlines(&b[start..i.min(b.len())], &mut out);
        } else if c == 'r'
            && (next == Some('"') || next == Some('#'))
            && (i == 0 || !(b[i - 1].is_alphanumeric() || b[i - 1] == '_'))
        {
            // Raw string r"…" / r#"…"#.
            let mut j = i + 1;
            let mut hashes = 0;
            while b.get(j) == Some(&'#') {
                hashes += 1;
                j += 1;
            }
            if b.get(j) != Some(&'"') {
                out.push(c);
                i += 1;
                continue;
            }
            let start = i;
            j += 1;
            loop {
                if j >= b.len() {
                    break;
                }
                if b[j] == '"' && (0..hashes).all(|k| b.get(j + 1 + k) == Some(&'#')) {
                    j += 1 + hashes;
                    break;
                }
                j += 1;
            }
            keep_newlines(&b[start..j.min(b.len())], &mut out);
            out.push_str("\"\"");
            i = j;
        } else if c == '"' {
            let start = i;
            i += 1;
            while i < b.len() && b[i] != '"' {
                i += if b[i] == '\\' { 2 } else { 1 };
            }
            i += 1;
            keep_newlines(&b[start..i.min(b.len())], &mut out);
            out.push_str("\"\"");
        } else if c == '\'' {
            // A char literal ('x', '\n', '\u{..}'); a lifetime ('a) is left alone.
            let lit_end = if next == Some('\\') {
                (i + 2..b.len()).find(|&j| b[j] == '\'').map(|j| j + 1)
            } else if b.get(i + 2) == Some(&'\'') {
                Some(i + 3)
            } else {
                None
            };
            match lit_end {
                Some(end) => {
                    out.push_str("' '");
                    i = end;
                }
                None => {
                    out.push(c);
                    i += 1;
                }
            }
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

/// Blank out items marked `#[cfg(test)]` (a `mod … { … }` block or a single `…;` item),
/// keeping newlines.
pub fn strip_test_code(src: &str) -> String {
    let mut out = String::with_capacity(src.len());
    let mut rest = src;
    while let Some(at) = rest.find("#[cfg(test)]") {
        out.push_str(&rest[..at]);
        let item = &rest[at..];
        // The item ends at the first `;` before any `{`, or at the `}` matching the first `{`.
        let semi = item.find(';');
        let brace = item.find('{');
        let end = match (semi, brace) {
            (Some(s), Some(b)) if s < b => s + 1,
            (_, Some(b)) => {
                let mut depth = 0usize;
                let mut end = item.len();
                for (k, ch) in item[b..].char_indices() {
                    match ch {
                        '{' => depth += 1,
                        '}' => {
                            depth -= 1;
                            if depth == 0 {
                                end = b + k + 1;
                                break;
                            }
                        }
                        _ => {}
                    }
                }
                end
            }
            (Some(s), None) => s + 1,
            (None, None) => item.len(),
        };
        out.extend(item[..end].chars().filter(|c| *c == '\n'));
        rest = &item[end..];
    }
    out.push_str(rest);
    out
}

/// Every path starting with `crate`, `super` or `self` that the (stripped) source names: each
/// leaf of every `use` tree, and every inline `crate::a::b` path. With the line it is on.
pub fn paths_named(src: &str) -> Vec<(Vec<String>, usize)> {
    let mut out = Vec::new();
    let chars: Vec<char> = src.chars().collect();
    let line_at = |pos: usize| chars[..pos].iter().filter(|c| **c == '\n').count() + 1;
    let mut i = 0;
    while i < chars.len() {
        let word_start = i == 0 || !(chars[i - 1].is_alphanumeric() || chars[i - 1] == '_');
        if word_start && starts_with_word(&chars, i, "use") {
            // A `use` tree up to its `;`.
            let end = (i..chars.len())
                .find(|&j| chars[j] == ';')
                .unwrap_or(chars.len());
            let tree: String = chars[i + 3..end].iter().collect();
            let line = line_at(i);
            for leaf in use_tree_leaves(&tree) {
                if matches!(
                    leaf.first().map(String::as_str),
                    Some("crate" | "super" | "self")
                ) {
                    out.push((leaf, line));
                }
            }
            i = end + 1;
            continue;
        }
        let prev = if i == 0 { ' ' } else { chars[i - 1] };
        let starts_path = word_start && prev != '$' && prev != ':';
        if starts_path
            && ["crate", "super", "self"]
                .iter()
                .any(|w| starts_with_word(&chars, i, w))
        {
            let mut j = i;
            let mut segs = Vec::new();
            loop {
                let s = j;
                while j < chars.len() && (chars[j].is_alphanumeric() || chars[j] == '_') {
                    j += 1;
                }
                segs.push(chars[s..j].iter().collect::<String>());
                if chars.get(j) == Some(&':')
                    && chars.get(j + 1) == Some(&':')
                    && chars
                        .get(j + 2)
                        .is_some_and(|c| c.is_alphabetic() || *c == '_')
                {
                    j += 2;
                } else {
                    break;
                }
            }
            if segs.len() > 1 {
                out.push((segs, line_at(i)));
            }
            i = j.max(i + 1);
            continue;
        }
        i += 1;
    }
    out
}

fn starts_with_word(chars: &[char], i: usize, w: &str) -> bool {
    let wc: Vec<char> = w.chars().collect();
    chars.len() >= i + wc.len()
        && chars[i..i + wc.len()] == wc[..]
        && chars
            .get(i + wc.len())
            .is_none_or(|c| !(c.is_alphanumeric() || *c == '_'))
}

/// The leaves of a `use` tree (`crate::{a::{b, c as d}, e::*}` -> `crate::a::b`, `crate::a::c`,
/// `crate::e`), each as its segments. `self` inside braces names the prefix itself.
pub fn use_tree_leaves(tree: &str) -> Vec<Vec<String>> {
    fn parse(tokens: &[String], pos: &mut usize, prefix: &[String], out: &mut Vec<Vec<String>>) {
        let mut path = prefix.to_vec();
        while *pos < tokens.len() {
            let t = tokens[*pos].as_str();
            *pos += 1;
            match t {
                "::" => {}
                "{" => {
                    loop {
                        parse(tokens, pos, &path, out);
                        match tokens.get(*pos).map(String::as_str) {
                            Some(",") => *pos += 1,
                            Some("}") => {
                                *pos += 1;
                                break;
                            }
                            _ => break,
                        }
                        if tokens.get(*pos).map(String::as_str) == Some("}") {
                            *pos += 1;
                            break;
                        }
                    }
                    return;
                }
                "," | "}" => {
                    *pos -= 1;
                    break;
                }
                "*" => break,
                "as" => {
                    *pos += 1; // the alias
                    break;
                }
                // `self` first names the current module; inside braces, the prefix itself.
                "self" if !path.is_empty() => {}
                word => path.push(word.to_string()),
            }
        }
        if !path.is_empty() {
            out.push(path);
        }
    }
    let mut tokens = Vec::new();
    let mut word = String::new();
    let chars: Vec<char> = tree.chars().collect();
    let mut k = 0;
    while k < chars.len() {
        let c = chars[k];
        if c.is_alphanumeric() || c == '_' {
            word.push(c);
        } else {
            if !word.is_empty() {
                tokens.push(std::mem::take(&mut word));
            }
            if c == ':' && chars.get(k + 1) == Some(&':') {
                tokens.push("::".into());
                k += 1;
            } else if "{},*".contains(c) {
                tokens.push(c.to_string());
            }
        }
        k += 1;
    }
    if !word.is_empty() {
        tokens.push(word);
    }
    // A leading `::` (extern path) or `pub`/`pub(crate)` never reaches here: callers pass what
    // follows `use`.
    let mut out = Vec::new();
    let mut pos = 0;
    parse(&tokens, &mut pos, &[], &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(p, t)| (p.to_string(), t.to_string()))
            .collect()
    }

    fn segs(s: &str) -> Vec<String> {
        s.split("::").map(String::from).collect()
    }

    #[test]
    fn module_names_follow_files() {
        assert_eq!(module_of("lib.rs"), "");
        assert_eq!(module_of("main.rs"), "");
        assert_eq!(module_of("bin/console.rs"), "");
        assert_eq!(module_of("trace/mod.rs"), "trace");
        assert_eq!(module_of("trace/attach.rs"), "trace::attach");
        assert_eq!(module_of("bsp.rs"), "bsp");
    }

    #[test]
    fn use_trees_expand_to_leaves() {
        let leaves = use_tree_leaves(" crate::{a::{b, c as d}, e::*, f::{self, g}}");
        assert_eq!(
            leaves,
            vec![
                segs("crate::a::b"),
                segs("crate::a::c"),
                segs("crate::e"),
                segs("crate::f"),
                segs("crate::f::g")
            ]
        );
        assert_eq!(
            use_tree_leaves(" super::ops::Ops"),
            vec![segs("super::ops::Ops")]
        );
        assert_eq!(use_tree_leaves(" core::fmt"), vec![segs("core::fmt")]);
    }

    #[test]
    fn comments_strings_and_test_code_are_not_imports() {
        let src = "// use crate::a;\n/* crate::b::x */ let s = \"crate::c::y\";\n\
                   let r = r#\"crate::d\"#; let c = '\"'; fn f<'a>(x: &'a u8) {}\n\
                   #[cfg(test)]\nmod tests { use crate::e; }\ncrate::f::g();\n";
        let named = paths_named(&strip_test_code(&strip_comments_and_strings(src)));
        assert_eq!(named, vec![(segs("crate::f::g"), 6)]);
    }

    #[test]
    fn super_and_self_resolve_relative_to_the_file() {
        let g = Graph::build(&files(&[
            ("lib.rs", "pub mod a; pub mod b;"),
            ("a/mod.rs", "pub mod x; pub mod y; pub use x::X;"),
            ("a/x.rs", "use super::y::Y; pub struct X;"),
            (
                "a/y.rs",
                "pub struct Y; fn f() { self::g(); super::super::b::h(); }",
            ),
            ("b.rs", "pub fn h() {}"),
        ]));
        let e: Vec<(&str, &str)> = g
            .edges
            .iter()
            .map(|e| (e.from.as_str(), e.to.as_str()))
            .collect();
        // a -> a::x is a parent's re-export (not counted); a::y -> a::y (self) is not an edge.
        assert_eq!(e, vec![("a::x", "a::y"), ("a::y", "b")]);
    }

    #[test]
    fn a_circle_is_found_and_named() {
        let g = Graph::build(&files(&[
            ("lib.rs", "mod a; mod b; mod c;"),
            ("a.rs", "use crate::b::B; pub struct A;"),
            ("b.rs", "use crate::c::C; pub struct B;"),
            ("c.rs", "pub struct C(crate::a::A);"),
        ]));
        let v = g.check(None);
        let abc: Vec<ModPath> = vec!["a".into(), "b".into(), "c".into()];
        assert_eq!(
            v,
            vec![Violation::Circle {
                cycle: abc.clone(),
                tangle: abc
            }]
        );
        assert_eq!(v[0].to_string(), "import circle: a -> b -> c -> a");
    }

    #[test]
    fn a_child_naming_its_parent_can_close_a_circle() {
        let g = Graph::build(&files(&[
            ("lib.rs", "mod t;"),
            (
                "t/mod.rs",
                "mod ops; mod attach; pub use attach::Filter; use self::ops::Ops;",
            ),
            ("t/ops.rs", "use super::Filter; pub struct Ops;"),
            ("t/attach.rs", "pub enum Filter {}"),
        ]));
        // t -> t::ops is a facade edge (not counted), t::ops -> t is counted: no circle yet.
        assert!(g.check(None).is_empty());
        let g = Graph::build(&files(&[
            ("lib.rs", "mod t;"),
            ("t/mod.rs", "mod ops; mod attach;"),
            ("t/ops.rs", "use super::attach::Filter; pub struct Ops;"),
            (
                "t/attach.rs",
                "pub enum Filter {} fn f(_: super::ops::Ops) {}",
            ),
        ]));
        let both: Vec<ModPath> = vec!["t::attach".into(), "t::ops".into()];
        assert_eq!(
            g.check(None),
            vec![Violation::Circle {
                cycle: both.clone(),
                tangle: both
            }]
        );
    }

    #[test]
    fn layers_catch_an_upward_import() {
        let layers =
            Layers::from_markdown("# doc\n```layers\narch   # bottom\nbsp\nbench <- top\n```\n")
                .unwrap();
        assert_eq!(layers.0, vec![vec!["arch"], vec!["bsp"], vec!["bench"]]);
        let good = Graph::build(&files(&[
            (
                "lib.rs",
                "mod arch; mod bsp; mod bench; crate::bench::run();",
            ),
            ("arch.rs", ""),
            ("bsp.rs", "use crate::arch;"),
            ("bench.rs", "use crate::{bsp, arch};"),
        ]));
        assert!(good.check(Some(&layers)).is_empty());
        let bad = Graph::build(&files(&[
            ("lib.rs", "mod arch; mod bsp; mod bench;"),
            ("arch.rs", ""),
            ("bsp.rs", "\nconst M: crate::bench::Mode = 0;"),
            ("bench.rs", ""),
        ]));
        let v = bad.check(Some(&layers));
        assert_eq!(
            v,
            vec![Violation::Upward {
                edge: Edge {
                    from: "bsp".into(),
                    to: "bench".into(),
                    line: 2
                },
                from_layer: 1,
                to_layer: 2
            }]
        );
        assert_eq!(
            v[0].to_string(),
            "upward import: bsp (layer 1) names bench (layer 2) at line 2"
        );
    }

    #[test]
    fn longer_prefixes_place_submodules_and_stale_or_missing_entries_are_reported() {
        let layers =
            Layers::from_markdown("```layers\ntrace::core\nbench\ntrace\ngone\n```").unwrap();
        assert_eq!(layers.layer_of("trace::core::ops"), Some(0));
        assert_eq!(layers.layer_of("trace::direct"), Some(2));
        assert_eq!(layers.layer_of("console"), None);
        let g = Graph::build(&files(&[
            ("lib.rs", ""),
            ("trace/mod.rs", ""),
            ("trace/core.rs", "use crate::bench::X;"),
            ("trace/direct.rs", "use super::core::Ops;"),
            ("bench.rs", ""),
            ("console.rs", ""),
        ]));
        let v = g.check(Some(&layers));
        assert!(v.contains(&Violation::Unplaced("console".into())), "{v:?}");
        assert!(v.contains(&Violation::Stale("gone".into())), "{v:?}");
        assert!(
            v.iter()
                .any(|x| matches!(x, Violation::Upward { edge, .. } if edge.from == "trace::core")),
            "{v:?}"
        );
        assert_eq!(v.len(), 3, "{v:?}");
    }

    #[test]
    fn malformed_layer_documents_are_errors() {
        assert!(Layers::from_markdown("no block").is_err());
        assert!(Layers::from_markdown("```layers\n```").is_err());
        assert!(Layers::from_markdown("```layers\narch\n").is_err());
    }
}
