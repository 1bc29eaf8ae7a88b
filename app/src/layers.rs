//! The capabilities' order, checked: a module may use modules of its own
//! layer and of the layers below it, never one above. The crate root
//! (`lib.rs`, `main.rs`: the state and the route table) sits above all and
//! may use anything.
//!
//! Today's code does not keep the order everywhere: [`KNOWN_UPWARD`] lists
//! each use that goes up, to be taken out as the claims store takes over
//! what the upper modules now lend the lower ones. The test fails on an
//! upward use not in the list, and on a listed one that is gone (so the list
//! only shrinks).
use std::collections::BTreeSet;
use std::path::Path;

/// Lowest first.
const LAYERS: &[&[&str]] = &[
    &["domain", "crypto", "db", "config", "clock", "i18n", "body", "error", "web"],
    &["auth", "audit", "cases", "mail", "jobs"],
    &["claims"],
    &["intake", "evidence", "consent"],
    &["review", "roster"],
    &["rounds", "me", "reminders"],
    &["cli", "openapi", "layers"],
];

/// Uses that go up the order today: (user, used).
const KNOWN_UPWARD: &[(&str, &str)] = &[
    ("auth", "review"),
    ("cases", "consent"),
    ("config", "evidence"),
    ("error", "auth"),
    ("error", "intake"),
    ("error", "review"),
    ("evidence", "review"),
    ("intake", "review"),
    ("jobs", "reminders"),
    ("jobs", "review"),
    ("jobs", "rounds"),
    ("web", "auth"),
];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|layer| layer.contains(&module))
}

/// The top-level module a file under `src/` belongs to (`None` for the root).
fn module_of(relative: &Path) -> Option<String> {
    let first = relative.components().next()?.as_os_str().to_str()?;
    let name = first.strip_suffix(".rs").unwrap_or(first);
    (!matches!(name, "lib" | "main")).then(|| name.to_string())
}

/// Every `crate::<module>` a source text names.
fn used_modules(text: &str) -> BTreeSet<String> {
    text.match_indices("crate::")
        .filter_map(|(at, found)| {
            let rest = &text[at + found.len()..];
            let name: String =
                rest.chars().take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_').collect();
            (!name.is_empty()).then_some(name)
        })
        .collect()
}

fn sources(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn no_module_uses_one_above_it_beyond_the_known_list() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    assert!(files.len() > 50, "the source tree was read: {} files", files.len());
    let mut upward = BTreeSet::new();
    let mut unplaced = BTreeSet::new();
    for file in &files {
        let Some(user) = file.strip_prefix(&src).ok().and_then(module_of) else { continue };
        let Some(user_layer) = layer_of(&user) else {
            unplaced.insert(user);
            continue;
        };
        let text = std::fs::read_to_string(file).unwrap_or_default();
        for used in used_modules(&text) {
            if used == user {
                continue;
            }
            // Lower-case names at the root are its functions (`parse_id`, `today_of`).
            if let Some(used_layer) = layer_of(&used) {
                if used_layer > user_layer {
                    upward.insert((user.clone(), used));
                }
            }
        }
    }
    assert!(unplaced.is_empty(), "modules with no place in LAYERS: {unplaced:?}");
    let known: BTreeSet<(String, String)> = KNOWN_UPWARD.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect();
    let new: Vec<_> = upward.difference(&known).collect();
    let gone: Vec<_> = known.difference(&upward).collect();
    assert!(new.is_empty(), "a lower module uses a higher one (user, used): {new:?}");
    assert!(gone.is_empty(), "no longer used upward, take out of KNOWN_UPWARD: {gone:?}");
}

#[test]
fn a_use_is_found_in_paths_and_not_in_the_root() {
    let found = used_modules(
        "use crate::audit::{self, Event};\nlet x = crate::i18n::t(lang);\nuse crate::{parse_id, AppState};",
    );
    assert_eq!(found.into_iter().collect::<Vec<_>>(), vec!["audit".to_string(), "i18n".to_string()]);
    assert_eq!(module_of(Path::new("review/pages.rs")).as_deref(), Some("review"));
    assert_eq!(module_of(Path::new("web.rs")).as_deref(), Some("web"));
    assert_eq!(module_of(Path::new("lib.rs")), None);
}
