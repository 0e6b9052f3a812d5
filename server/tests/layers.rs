//! The server's module graph, read from its sources: no import circle between files, and the layers point
//! one way (the WebSocket transport does not import the HTTP one; policy and domain import no I/O).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Every module of `server/src` by path (`store::posts::commit`; `crate` for lib.rs and main.rs), with
/// its source up to its unit tests and without comments.
fn modules() -> BTreeMap<String, String> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).expect("server/src is readable") {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    walk(&root, &mut files);
    let comment = regex::Regex::new(r"(?m)//.*$").expect("a pattern");
    files
        .into_iter()
        .map(|path| {
            let rel = path.strip_prefix(&root).expect("under src").with_extension("");
            let mut parts: Vec<String> = rel.iter().map(|p| p.to_string_lossy().into_owned()).collect();
            if parts.last().is_some_and(|p| p == "mod") {
                parts.pop();
            }
            let name = if parts == ["lib"] || parts == ["main"] { "crate".to_owned() } else { parts.join("::") };
            let text = std::fs::read_to_string(&path).expect("a source file");
            let code = text.split("#[cfg(test)]\nmod tests").next().unwrap_or_default();
            (name, comment.replace_all(code, "").into_owned())
        })
        .collect()
}

/// Which module each module uses (`crate::…` and `super::…` paths, resolved to the longest module they
/// name), leaving out a module's own ancestors: a child may use what its parent declares.
fn edges(mods: &BTreeMap<String, String>) -> BTreeMap<String, BTreeSet<String>> {
    let path = regex::Regex::new(r"\b(crate|super)::([a-z_][a-z0-9_]*(?:::[a-z_][a-z0-9_]*)*)").expect("a pattern");
    let resolve = |full: &str| {
        let segs: Vec<&str> = full.split("::").collect();
        (1..=segs.len()).rev().map(|n| segs[..n].join("::")).find(|m| mods.contains_key(m))
    };
    mods.iter()
        .map(|(name, code)| {
            let parent = name.rsplit_once("::").map_or("", |(p, _)| p);
            let used = path
                .captures_iter(code)
                .filter_map(|c| {
                    let rest = &c[2];
                    let full = if &c[1] == "super" && !parent.is_empty() {
                        format!("{parent}::{rest}")
                    } else {
                        rest.to_owned()
                    };
                    resolve(&full)
                })
                .filter(|t| t != name && !name.starts_with(&format!("{t}::")))
                .collect();
            (name.clone(), used)
        })
        .collect()
}

/// The strongly connected components of more than one module (Tarjan).
fn circles(edges: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    struct State<'a> {
        edges: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        found: Vec<Vec<String>>,
    }
    fn visit<'a>(s: &mut State<'a>, v: &'a str) {
        let i = s.index.len();
        s.index.insert(v, i);
        s.low.insert(v, i);
        s.stack.push(v);
        for w in s.edges.get(v).into_iter().flatten() {
            let w = w.as_str();
            if !s.index.contains_key(w) {
                visit(s, w);
                let lw = s.low[w];
                s.low.entry(v).and_modify(|l| *l = (*l).min(lw));
            } else if s.stack.contains(&w) {
                let iw = s.index[w];
                s.low.entry(v).and_modify(|l| *l = (*l).min(iw));
            }
        }
        if s.low[v] == s.index[v] {
            let at = s.stack.iter().rposition(|x| *x == v).expect("on the stack");
            let component: Vec<String> = s.stack.drain(at..).map(str::to_owned).collect();
            if component.len() > 1 {
                s.found.push(component);
            }
        }
    }
    let mut s = State { edges, index: BTreeMap::new(), low: BTreeMap::new(), stack: Vec::new(), found: Vec::new() };
    for v in edges.keys() {
        if !s.index.contains_key(v.as_str()) {
            visit(&mut s, v);
        }
    }
    s.found
}

/// The graph of top-level modules (`store`, `http`, …) from the graph of files.
fn top_level(edges: &BTreeMap<String, BTreeSet<String>>) -> BTreeMap<String, BTreeSet<String>> {
    let top = |m: &str| m.split("::").next().unwrap_or(m).to_owned();
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (from, to) in edges {
        let entry = out.entry(top(from)).or_default();
        entry.extend(to.iter().map(|t| top(t)).filter(|t| *t != top(from)));
    }
    out
}

#[test]
fn no_module_of_the_server_imports_one_that_imports_it_back() {
    let edges = edges(&modules());
    assert!(edges.len() > 50, "the sources were read: {} modules", edges.len());
    assert_eq!(circles(&edges), Vec::<Vec<String>>::new(), "import circles between files");
    assert_eq!(circles(&top_level(&edges)), Vec::<Vec<String>>::new(), "import circles between top-level modules");
}

#[test]
fn the_websocket_does_not_import_http_and_policy_imports_no_io() {
    let edges = top_level(&edges(&modules()));
    let uses = |from: &str, to: &str| edges.get(from).is_some_and(|t| t.contains(to));
    // (`http` mounts the WebSocket route in the one router, under the same layers; that is its only use.)
    assert!(!uses("ws", "http"), "the WebSocket transport posts through `posting`, not the HTTP handlers");
    for io in ["store", "http", "ws", "messaging", "notifications", "state"] {
        assert!(!uses("policy", io), "policy decides on values it is given; it imports {io}");
        assert!(!uses("domain", io), "domain types stand alone; they import {io}");
    }
}

/// The check itself finds a circle when there is one.
#[test]
fn a_circle_is_found() {
    let graph = |pairs: &[(&str, &str)]| {
        let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (a, b) in pairs {
            g.entry((*a).to_owned()).or_default().insert((*b).to_owned());
            g.entry((*b).to_owned()).or_default();
        }
        g
    };
    assert_eq!(circles(&graph(&[("a", "b"), ("b", "c"), ("c", "a"), ("c", "d")])).len(), 1);
    assert!(circles(&graph(&[("a", "b"), ("b", "c"), ("a", "c")])).is_empty());
}
