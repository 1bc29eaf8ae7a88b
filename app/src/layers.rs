//! The capabilities' order, checked: a module may use modules of its own
//! layer and of the layers below it, never one above. The crate root
//! (`lib.rs`, `main.rs`: the state and the route table) sits above all and
//! may use anything.
//!
//! Where a lower capability must reach a higher one it does so through
//! what the crate root hands it (`claims::Listeners` for events,
//! `jobs::Handlers` for background work), never by naming it.
use std::collections::BTreeSet;
use std::path::Path;

/// Lowest first.
const LAYERS: &[&[&str]] = &[
    &["domain", "crypto", "db", "config", "clock", "i18n", "body", "error"],
    // `web` is the pages' frame (the caller in the header, the form token):
    // it sits with `auth`, whose pages use it.
    &["auth", "audit", "cases", "mail", "jobs", "web"],
    &["claims"],
    &["intake", "evidence", "consent"],
    &["review", "roster"],
    &["rounds", "me", "reminders"],
    &["cli", "dev", "openapi", "layers"],
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

/// Which uses go up the order, and which modules have no place in it,
/// over (module, source text) pairs.
fn upward_uses<'a>(
    files: impl IntoIterator<Item = (String, &'a str)>,
) -> (BTreeSet<(String, String)>, BTreeSet<String>) {
    let mut upward = BTreeSet::new();
    let mut unplaced = BTreeSet::new();
    for (user, text) in files {
        let Some(user_layer) = layer_of(&user) else {
            unplaced.insert(user);
            continue;
        };
        for used in used_modules(text) {
            // Lower-case names at the root are its functions (`parse_id`, `today_of`).
            if let Some(used_layer) = layer_of(&used) {
                if used != user && used_layer > user_layer {
                    upward.insert((user.clone(), used));
                }
            }
        }
    }
    (upward, unplaced)
}

#[test]
fn no_module_uses_one_above_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    assert!(files.len() > 50, "the source tree was read: {} files", files.len());
    let texts: Vec<(String, String)> = files
        .iter()
        .filter_map(|file| {
            let module = file.strip_prefix(&src).ok().and_then(module_of)?;
            Some((module, std::fs::read_to_string(file).unwrap_or_default()))
        })
        .collect();
    let (upward, unplaced) = upward_uses(texts.iter().map(|(m, t)| (m.clone(), t.as_str())));
    assert!(unplaced.is_empty(), "modules with no place in LAYERS: {unplaced:?}");
    assert!(upward.is_empty(), "a lower module uses a higher one (user, used): {upward:?}");
}

#[test]
fn an_upward_use_and_an_unplaced_module_are_found() {
    let (upward, unplaced) = upward_uses([
        ("intake".to_string(), "use crate::review::desk::claimant_notice;"),
        ("review".to_string(), "use crate::intake::service::detail;\nuse crate::claims::store;"),
        ("claims".to_string(), "use crate::auth::CurrentUser;"),
        ("newcomer".to_string(), "use crate::db::Db;"),
    ]);
    assert_eq!(upward.into_iter().collect::<Vec<_>>(), vec![("intake".to_string(), "review".to_string())]);
    assert_eq!(unplaced.into_iter().collect::<Vec<_>>(), vec!["newcomer".to_string()]);
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
