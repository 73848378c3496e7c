//! Strict loading: every error names the file, the line and the key path.

use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};

use serde_saphyr::{Location, Spanned};

use super::{Presence, Scenario};

/// A problem in a scenario file, located as precisely as the YAML allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadError {
    pub file: PathBuf,
    /// 1-based; `None` when the problem is the file as a whole.
    pub line: Option<u64>,
    pub column: Option<u64>,
    /// Dotted key path, e.g. `requests[0].expect.headers`.
    pub key: Option<String>,
    pub message: String,
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(column) = self.column {
                write!(f, ":{column}")?;
            }
        }
        f.write_str(": ")?;
        if let Some(key) = &self.key {
            write!(f, "`{key}`: ")?;
        }
        // Continuation lines (a regex error's caret) indented under their error.
        f.write_str(&self.message.replace('\n', "\n    "))
    }
}

impl std::error::Error for LoadError {}

impl LoadError {
    fn whole_file(file: &Path, message: impl Into<String>) -> Self {
        Self {
            file: file.to_owned(),
            line: None,
            column: None,
            key: None,
            message: message.into(),
        }
    }

    fn at(
        file: &Path,
        location: Location,
        key: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        let known = location != Location::UNKNOWN;
        Self {
            file: file.to_owned(),
            line: known.then(|| location.line()),
            column: known.then(|| location.column()),
            key: Some(key.into()),
            message: message.into(),
        }
    }
}

/// Reads and checks one scenario file. `manifests_dir` is where the manifests it names live.
pub fn load_file(path: &Path, manifests_dir: &Path) -> Result<Scenario, Vec<LoadError>> {
    load_checked(path, manifests_dir, false)
}

/// As [`load_file`], but `PLACEHOLDER` markers of `egress new-scenario` are let through
/// (the scaffold checks everything else before its author fills them in).
pub fn load_unfinished(path: &Path, manifests_dir: &Path) -> Result<Scenario, Vec<LoadError>> {
    load_checked(path, manifests_dir, true)
}

fn load_checked(
    path: &Path,
    manifests_dir: &Path,
    placeholders_allowed: bool,
) -> Result<Scenario, Vec<LoadError>> {
    let bytes = std::fs::read(path).map_err(|e| {
        vec![LoadError::whole_file(
            path,
            format!("cannot read the file: {e}"),
        )]
    })?;
    let text = match std::str::from_utf8(&bytes) {
        Ok(text) => text,
        Err(e) => {
            let line = bytes[..e.valid_up_to()]
                .iter()
                .filter(|b| **b == b'\n')
                .count() as u64
                + 1;
            return Err(vec![LoadError {
                line: Some(line),
                ..LoadError::whole_file(path, "not UTF-8 text (is this a binary file?)")
            }]);
        }
    };
    let (scenario, mut problems) = load_all(text, path);
    if !placeholders_allowed {
        problems.extend(placeholders(text, path));
    }
    if let Some(scenario) = scenario {
        let removed: Vec<String> = problems.iter().filter_map(|p| p.key.clone()).collect();
        // What was cut out to read past a shape error must not show up again as
        // "missing" in the checks of the rest.
        problems.extend(
            check(&scenario, manifests_dir)
                .into_iter()
                .filter(|p| !p.key.as_deref().is_some_and(|k| related(k, &removed))),
        );
        if problems.is_empty() {
            return Ok(scenario);
        }
    }
    problems.sort_by_key(|p| (p.line, p.column));
    problems.dedup();
    Err(problems)
}

/// Marks `egress new-scenario` leaves for its author; a scenario with one is unfinished.
const PLACEHOLDER: &str = "PLACEHOLDER";

/// The lines of `text` that still hold a marker.
pub fn placeholders(text: &str, path: &Path) -> Vec<LoadError> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| l.contains(PLACEHOLDER))
        .map(|(i, l)| LoadError {
            line: Some(i as u64 + 1),
            column: l.find(PLACEHOLDER).map(|c| c as u64 + 1),
            ..LoadError::whole_file(
                path,
                "a PLACEHOLDER from `egress new-scenario` is still here: replace the guess with what the bug report says, then delete the marker",
            )
        })
        .collect()
}

/// Whether one key path lies inside the other (or is it).
fn related(key: &str, others: &[String]) -> bool {
    let inside = |a: &str, b: &str| {
        a == b || a.starts_with(&format!("{b}.")) || a.starts_with(&format!("{b}["))
    };
    others.iter().any(|o| inside(key, o) || inside(o, key))
}

/// Every shape error of a file, not only the first: after each one the offending
/// entry is commented out (lines keep their numbers) and the text read again.
/// Errors that only follow from an entry cut out are not reported.
fn load_all(text: &str, path: &Path) -> (Option<Scenario>, Vec<LoadError>) {
    const MOST: usize = 50;
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    let mut problems: Vec<LoadError> = Vec::new();
    for _ in 0..MOST {
        let attempt = lines.join("\n");
        let error = match load_str(&attempt, path) {
            Ok(scenario) => return (Some(scenario), problems),
            Err(e) => e,
        };
        let reported: Vec<String> = problems.iter().filter_map(|p| p.key.clone()).collect();
        let follows = error.key.as_deref().is_some_and(|k| related(k, &reported))
            || (!problems.is_empty() && error.key.is_none());
        // A missing field cannot be cut out; serde reports it after the rest of its
        // mapping, so nothing of that mapping is lost by stopping here.
        let missing = error.message.starts_with("missing field");
        let line = error.line.map(|l| l as usize).filter(|l| *l >= 1);
        if !follows {
            problems.push(error);
        }
        let Some(line) = line.filter(|_| !missing) else {
            break;
        };
        if !comment_out(&mut lines, line - 1) {
            break;
        }
    }
    (None, problems)
}

/// Comments out line `at` and the lines indented deeper below it (its block);
/// `false` when there was nothing left to cut.
fn comment_out(lines: &mut [String], at: usize) -> bool {
    let Some(first) = lines.get(at) else {
        return false;
    };
    if first.trim_start().starts_with('#') || first.trim().is_empty() {
        return false;
    }
    let indent = |l: &str| l.len() - l.trim_start().len();
    let base = indent(first);
    // A list item's block is what is indented past its dash.
    let base = if first.trim_start().starts_with("- ") {
        base + 1
    } else {
        base
    };
    let mut end = at + 1;
    while end < lines.len() && (lines[end].trim().is_empty() || indent(&lines[end]) > base) {
        end += 1;
    }
    for line in &mut lines[at..end] {
        if !line.trim().is_empty() {
            *line = format!("# {line}");
        }
    }
    true
}

/// Parses scenario YAML; `path` is used in errors and to check the name.
pub fn load_str(text: &str, path: &Path) -> Result<Scenario, LoadError> {
    if text.trim().is_empty()
        || text
            .lines()
            .all(|l| l.trim().is_empty() || l.trim_start().starts_with('#'))
    {
        return Err(LoadError::whole_file(
            path,
            "the file is empty; a scenario needs at least name, description and requests (see scenarios/README.md)",
        ));
    }
    if text.contains('\0') {
        return Err(LoadError::whole_file(
            path,
            "the file contains NUL bytes (is this a binary file?)",
        ));
    }
    let mut key_path: Option<String> = None;
    let parsed = serde_saphyr::with_deserializer_from_str(text, |de| {
        serde_path_to_error::deserialize::<_, Scenario>(de).map_err(|e| {
            key_path = Some(e.path().to_string());
            e.into_inner()
        })
    });
    match parsed {
        Ok(mut scenario) => {
            scenario.source = path.to_owned();
            Ok(scenario)
        }
        Err(e) => {
            let location = e.location().unwrap_or(Location::UNKNOWN);
            let message = readable(&without_position(&e.without_snippet().to_string()));
            let key = key_path
                .map(|k| k.trim_end_matches(".?").to_owned())
                .filter(|k| !k.is_empty() && k != "." && k != "?");
            // "missing field `x`" names the mapping; the key is the field itself.
            let key = match (message.strip_prefix("missing field `"), key) {
                (Some(rest), parent) => {
                    let field = rest.split('`').next().unwrap_or_default();
                    Some(match parent {
                        Some(p) => format!("{p}.{field}"),
                        None => field.to_owned(),
                    })
                }
                (None, key) => key,
            };
            Err(LoadError {
                key,
                ..LoadError::at(path, location, String::new(), message)
            })
        }
    }
}

/// The message as a user reads it: line breaks kept (serde-saphyr escapes them) and
/// no advice meant for the library's callers.
fn readable(message: &str) -> String {
    let message = message.replace("\\n", "\n");
    // serde-saphyr: "duplicate mapping key: K, set DuplicateKeyPolicy in Options if
    // acceptable" (de/message_formatters.rs).
    match message.strip_prefix("duplicate mapping key") {
        Some(rest) => {
            let key = rest
                .strip_prefix(": ")
                .and_then(|r| r.rsplit_once(", set DuplicateKeyPolicy"))
                .map(|(k, _)| format!("`{k}`"))
                .unwrap_or_else(|| "a key".into());
            format!("{key} appears twice in the same mapping; keep one")
        }
        None => message,
    }
}

/// serde-saphyr appends " at line N, column M"; the location is reported separately.
fn without_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(at) if message[at..].contains(", column ") => message[..at].to_owned(),
        _ => message.to_owned(),
    }
}

static NAME_RULE: &str =
    "lowercase letters, digits and '-', starting with a letter, at most 50 characters";

fn is_dns_label(name: &str, max: usize) -> bool {
    !name.is_empty()
        && name.len() <= max
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && !name.ends_with('-')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// The first symbolic link on the way from `base` to `base/rel`, if any.
fn link_on_the_way(base: &Path, rel: &Path) -> Option<PathBuf> {
    let mut at = base.to_path_buf();
    for c in rel.components() {
        at.push(c);
        if std::fs::symlink_metadata(&at).is_ok_and(|m| m.file_type().is_symlink()) {
            return Some(at);
        }
    }
    None
}

/// Checks what the YAML shape cannot: names, files, URLs, uniqueness.
fn check(s: &Scenario, manifests_dir: &Path) -> Vec<LoadError> {
    let file = s.source.as_path();
    let mut problems = Vec::new();
    let mut problem = |span: &Location, key: String, message: String| {
        problems.push(LoadError::at(file, *span, key, message));
    };

    let name = &s.name.value;
    if !is_dns_label(name, 50) {
        problem(
            &s.name.referenced,
            "name".into(),
            format!("`{name}` is not a valid scenario name: {NAME_RULE}"),
        );
    }
    let stem = file
        .file_stem()
        .and_then(|f| f.to_str())
        .unwrap_or_default();
    if !stem.is_empty() && stem != name {
        problem(
            &s.name.referenced,
            "name".into(),
            format!("the name `{name}` differs from the file name `{stem}.yaml`; they must match"),
        );
    }
    if s.description.trim().is_empty() {
        problem(
            &s.name.referenced,
            "description".into(),
            "the description is empty".into(),
        );
    }
    for (i, tag) in s.tags.iter().enumerate() {
        if !is_dns_label(&tag.value, 40) {
            problem(
                &tag.referenced,
                format!("tags[{i}]"),
                format!("`{}` is not a valid tag: {NAME_RULE}", tag.value),
            );
        }
    }

    let mut file_ref = |what: &Spanned<String>, key: String, dir: &str, kind: &str| {
        let rel = Path::new(dir).join(&what.value);
        let rel = if rel.extension().is_none() {
            rel.with_extension("yaml")
        } else {
            rel
        };
        if what.value.contains("..") || Path::new(&what.value).is_absolute() {
            problem(
                &what.referenced,
                key,
                format!("{kind} `{}` must be a path inside manifests/", what.value),
            );
        } else if let Some(link) = link_on_the_way(manifests_dir, &rel) {
            problem(
                &what.referenced,
                key,
                format!(
                    "{kind} `{}`: {} is a symbolic link; manifests are read only from files inside manifests/ (a link could lead to any file, and evidence would copy it)",
                    what.value,
                    link.display()
                ),
            );
        } else if !manifests_dir.join(&rel).is_file() {
            problem(
                &what.referenced,
                key,
                format!(
                    "{kind} `{}` not found: no file manifests/{}",
                    what.value,
                    rel.display()
                ),
            );
        }
    };
    file_ref(&s.install, "install".into(), "install", "install profile");
    file_ref(&s.client, "client".into(), "client", "client");
    for (i, m) in s.manifests.iter().enumerate() {
        file_ref(m, format!("manifests[{i}]"), "", "manifest");
    }
    // A replacement is read and copied into evidence like any manifest.
    for (mode, variant) in [
        ("local", &s.upstream.local),
        ("internet", &s.upstream.internet),
    ] {
        for (from, to) in variant.iter().flat_map(|v| v.replace.iter()) {
            let at = Spanned::new(to.clone(), s.name.referenced, s.name.defined);
            file_ref(
                &at,
                format!("upstream.{mode}.replace.{from}"),
                "",
                "manifest",
            );
        }
    }
    for (i, c) in s.clients.iter().enumerate() {
        file_ref(
            &c.manifest,
            format!("clients[{i}].manifest"),
            "client",
            "client",
        );
    }
    // What is applied at each point: a `delete` must name something applied before it.
    let mut applied: Vec<String> = s.manifests.iter().map(|m| m.value.clone()).collect();
    let mut not_applied = Vec::new();
    let mut bad_patches: Vec<(Location, String, String)> = Vec::new();
    for (i, r) in s.requests.iter().enumerate() {
        for (j, action) in r.before.iter().enumerate() {
            let key = format!("requests[{i}].before[{j}]");
            let file = action.file();
            match action {
                super::Action::Apply(f) => {
                    file_ref(f, format!("{key}.apply"), "", "manifest");
                    if !applied.contains(&f.value) {
                        applied.push(f.value.clone());
                    }
                }
                super::Action::Patch(p) => {
                    if !applied.contains(&p.file.value) {
                        not_applied.push((
                            p.file.referenced,
                            format!("{key}.patch.file"),
                            p.file.value.clone(),
                        ));
                    }
                    if !p.merge.is_object() {
                        bad_patches.push((
                            p.file.referenced,
                            format!("{key}.patch.merge"),
                            "a merge patch is a map of the fields to change".to_owned(),
                        ));
                    }
                    if !p.object.value.contains('/') {
                        bad_patches.push((
                            p.object.referenced,
                            format!("{key}.patch.object"),
                            format!("`{}` is not `Kind/name`", p.object.value),
                        ));
                    }
                }
                super::Action::Delete(f) => {
                    if let Some(at) = applied.iter().position(|a| *a == f.value) {
                        applied.remove(at);
                    } else {
                        not_applied.push((
                            file.referenced,
                            format!("{key}.delete"),
                            f.value.clone(),
                        ));
                    }
                }
            }
        }
    }
    for (at, key, message) in bad_patches {
        problem(&at, key, message);
    }
    for (at, key, file) in not_applied {
        problem(
            &at,
            key,
            format!(
                "`{file}` is not applied at this point: list it in `manifests` or apply it in an earlier `before`"
            ),
        );
    }
    let mut client_names = BTreeSet::new();
    for (i, c) in s.clients.iter().enumerate() {
        if let Some(suffix) = &c.namespace
            && !(is_dns_label(&suffix.value, 40) && c.namespace_in(name).len() <= 63)
        {
            problem(
                &suffix.referenced,
                format!("clients[{i}].namespace"),
                format!(
                    "`{}` does not make a namespace name: the client runs in `<scenario>-<namespace>`, a DNS label of at most 63 characters ({NAME_RULE})",
                    suffix.value
                ),
            );
        }
        let ambient_cluster = s.install.value == "ambient";
        let mode_problem = match (c.mode, &c.namespace) {
            (Some(_), None) => Some(
                "a mode is the data plane of the client's own namespace: give it `namespace` too"
                    .to_owned(),
            ),
            (Some(super::DataPlane::Ambient), _) if !ambient_cluster => {
                Some("mode ambient needs `install: ambient` (an ambient cluster)".to_owned())
            }
            (Some(super::DataPlane::Sidecar) | None, Some(_)) if ambient_cluster => Some(
                "an ambient cluster injects no sidecars: give `mode: ambient` or `mode: none`"
                    .to_owned(),
            ),
            _ => None,
        };
        if let Some(message) = mode_problem {
            problem(&c.name.referenced, format!("clients[{i}].mode"), message);
        }
        for (value, what) in [(&c.name, "name"), (&c.service_account, "service_account")] {
            if !is_dns_label(&value.value, 63) {
                problem(
                    &value.referenced,
                    format!("clients[{i}].{what}"),
                    format!("`{}` is not a valid {what}: {NAME_RULE}", value.value),
                );
            }
        }
        if c.name.value == crate::model::mesh::CLIENT_POD
            || !client_names.insert(c.name.value.clone())
        {
            problem(
                &c.name.referenced,
                format!("clients[{i}].name"),
                format!(
                    "client `{}` is named twice (`{}` is the default client's)",
                    c.name.value,
                    crate::model::mesh::CLIENT_POD
                ),
            );
        }
    }
    for (i, r) in s.requests.iter().enumerate() {
        if let Some(c) = &r.client
            && c.value != crate::model::mesh::CLIENT_POD
            && !client_names.contains(&c.value)
        {
            problem(
                &c.referenced,
                format!("requests[{i}].client"),
                format!(
                    "no client `{}`: name one of `clients` ({}) or leave it out for the default client",
                    c.value,
                    client_names.iter().cloned().collect::<Vec<_>>().join(", ")
                ),
            );
        }
    }
    for (i, h) in s.upstream.hosts.iter().enumerate() {
        let valid = h.value.len() <= 253
            && h.value.contains('.')
            && h.value.split('.').all(|l| {
                !l.is_empty()
                    && l.len() <= 63
                    && !l.starts_with('-')
                    && !l.ends_with('-')
                    && l.chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            })
            && !h
                .value
                .split('.')
                .all(|l| l.chars().all(|c| c.is_ascii_digit()));
        if !valid {
            problem(
                &h.referenced,
                format!("upstream.hosts[{i}]"),
                format!(
                    "`{}` is not a DNS name the local upstream can answer as (lower-case labels joined by dots; no wildcard, no IP: list each member of a wildcard family)",
                    h.value
                ),
            );
        }
    }

    let mut declared = std::collections::BTreeSet::new();
    for (i, p) in s.upstream.ports.iter().enumerate() {
        let port = p.port.value;
        let message = if !(1..=65535).contains(&port) {
            Some(format!("{port} is not a TCP port (1 to 65535)"))
        } else if port == 80 || port == 443 {
            Some(format!(
                "{port} is the upstream's own HTTP{} port; declare another",
                if port == 443 { "S" } else { "" }
            ))
        } else if !declared.insert(port) {
            Some(format!("{port} is declared twice"))
        } else {
            None
        };
        if let Some(message) = message {
            problem(
                &p.port.referenced,
                format!("upstream.ports[{i}].port"),
                message,
            );
        }
    }

    if let Some(k) = &s.known_issue
        && !k.url.value.starts_with("https://")
    {
        problem(
            &k.url.referenced,
            "known_issue.url".into(),
            format!("`{}` is not an https:// link", k.url.value),
        );
    }

    if s.requests.is_empty() {
        problem(
            &s.name.referenced,
            "requests".into(),
            "a scenario needs at least one request".into(),
        );
    }
    let mut seen = BTreeSet::new();
    for (i, r) in s.requests.iter().enumerate() {
        let at = |k: &str| format!("requests[{i}].{k}");
        if !is_dns_label(&r.name.value, 40) {
            problem(
                &r.name.referenced,
                at("name"),
                format!(
                    "`{}` is not a valid request name: {NAME_RULE}",
                    r.name.value
                ),
            );
        }
        if !seen.insert(r.name.value.clone()) {
            problem(
                &r.name.referenced,
                at("name"),
                format!("request name `{}` is used twice", r.name.value),
            );
        }
        if let Err(e) = super::Template::parse(&r.url.value) {
            problem(&r.url.referenced, at("url"), e);
        }
        // gopher:// carries raw bytes over TCP (gophers:// in TLS): how a request
        // reaches a TCP upstream (scenarios/README.md, "TCP upstreams").
        let url = &r.url.value;
        let gopher = url.starts_with("gopher://") || url.starts_with("gophers://");
        if !(url.starts_with("http://") || url.starts_with("https://") || gopher) {
            problem(
                &r.url.referenced,
                at("url"),
                format!("`{url}` must start with http://, https://, gopher:// or gophers://"),
            );
        } else if gopher {
            let authority = url
                .split_once("://")
                .map_or("", |(_, rest)| rest.split('/').next().unwrap_or(rest));
            if !authority
                .rsplit_once(':')
                .is_some_and(|(_, port)| port.parse::<u16>().is_ok_and(|p| p > 0))
            {
                problem(
                    &r.url.referenced,
                    at("url"),
                    format!(
                        "`{url}` needs its port (gopher's own is 70): gopher://HOST:PORT/_BYTES, the bytes URL-encoded (%0A a newline)"
                    ),
                );
            }
        }
        for (j, arg) in r.curl_args.iter().enumerate() {
            let owned = [
                "-w",
                "--write-out",
                "-o",
                "--output",
                "-s",
                "--silent",
                "-S",
                "--show-error",
                "-m",
                "--max-time",
            ];
            if owned.contains(&arg.value.as_str()) {
                problem(
                    &arg.referenced,
                    at(&format!("curl_args[{j}]")),
                    format!(
                        "`{}` is set by the harness, which reads curl's output",
                        arg.value
                    ),
                );
            }
        }
        if r.max_time_seconds == 0 || r.max_time_seconds > 120 {
            problem(
                &r.name.referenced,
                at("max_time_seconds"),
                "must be between 1 and 120".into(),
            );
        }
        if let Some(repeat) = r.repeat
            && !(2..=1000).contains(&repeat.count)
        {
            problem(
                &r.name.referenced,
                at("repeat.count"),
                format!("{} sends: a burst is 2 to 1000", repeat.count),
            );
        }
        if let Some(repeat) = r.repeat
            && !(1..=repeat.count.clamp(1, 64)).contains(&repeat.concurrency)
        {
            problem(
                &r.name.referenced,
                at("repeat.concurrency"),
                format!(
                    "{} at once: between 1 and the count, at most 64",
                    repeat.concurrency
                ),
            );
        }
        for (k, share) in r.expect.share.iter().enumerate() {
            let fraction = |v: Option<f64>| v.is_none_or(|v| (0.0..=1.0).contains(&v));
            if r.repeat.is_none() {
                problem(
                    &r.name.referenced,
                    at(&format!("expect.share[{k}]")),
                    "a share is of a burst: give the request `repeat: {count: N, concurrency: C}`"
                        .into(),
                );
            }
            if !fraction(share.at_least) || !fraction(share.at_most) {
                problem(
                    &r.name.referenced,
                    at(&format!("expect.share[{k}]")),
                    "at_least and at_most are fractions between 0 and 1".into(),
                );
            }
        }
        if r.expect.is_empty() {
            problem(
                &r.name.referenced,
                at("expect"),
                "states nothing to judge; a request needs at least one expectation".into(),
            );
        }
        let e = &r.expect;
        let peer_keys = match &e.peer_metadata {
            Some(Presence::Fields(keys)) => keys.keys().cloned().collect(),
            _ => Vec::new(),
        };
        for key in peer_keys {
            let top = key.split('.').next().unwrap_or_default();
            if top.is_empty() || top.chars().any(|c| c.is_ascii_lowercase()) {
                problem(
                    &r.name.referenced,
                    at(&format!("expect.peer_metadata.{key}")),
                    "peer metadata keys are the Struct's upper-case keys (NAME, NAMESPACE, LABELS.app, ...)".into(),
                );
            }
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = "name: demo\ndescription: d\nrequests:\n  - name: r\n    url: http://httpbin.org/headers\n    expect:\n      exit_code: 0\n";

    fn load(text: &str) -> Result<Scenario, LoadError> {
        load_str(text, Path::new("scenarios/demo.yaml"))
    }

    #[test]
    fn minimal_scenario_loads_with_defaults() {
        let s = load(MINIMAL).unwrap();
        assert_eq!(s.name(), "demo");
        assert_eq!(s.install.value, "registry-only");
        assert_eq!(s.client.value, "curl");
        assert_eq!(s.requests[0].max_time_seconds, 10);
    }

    #[test]
    fn unknown_key_names_line_and_path() {
        let text = MINIMAL.replace(
            "      exit_code: 0\n",
            "      exit_code: 0\n      header: {}\n",
        );
        let e = load(&text).unwrap_err();
        assert_eq!(e.line, Some(8));
        assert_eq!(e.key.as_deref(), Some("requests[0].expect.header"));
        assert!(e.message.contains("unknown field `header`"), "{e}");
        assert!(e.to_string().starts_with("scenarios/demo.yaml:8:"), "{e}");
    }

    #[test]
    fn every_shape_error_of_a_file_is_reported_without_what_follows_from_them() {
        let text = "name: demo\ndescription: d\nrequests:\n  - name: a\n    url: http://httpbin.org/headers\n    expect:\n      status: 200\n      nonsense: 1\n      headers:\n        X-A:\n          matches: \"(open\"\n  - name: b\n    url: http://httpbin.org/headers\n    expect:\n      statu: 200\n";
        let (scenario, errors) = load_all(text, Path::new("scenarios/demo.yaml"));
        let keys: Vec<(Option<u64>, Option<&str>)> =
            errors.iter().map(|e| (e.line, e.key.as_deref())).collect();
        assert_eq!(
            keys,
            vec![
                (Some(8), Some("requests[0].expect.nonsense")),
                (Some(11), Some("requests[0].expect.headers.X-A")),
                (Some(15), Some("requests[1].expect.statu")),
            ],
            "{errors:?}"
        );
        assert!(
            errors[1].to_string().contains("regex parse error:\n"),
            "line breaks kept: {}",
            errors[1]
        );
        // Request b lost its only expectation, so the file as a whole does not read.
        assert!(scenario.is_none());
        // A missing field stops the reading (it cannot be cut out), reported once.
        let (_, errors) = load_all("name: demo\nrequests: []\n", Path::new("d.yaml"));
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(errors[0].key.as_deref(), Some("description"));
    }

    #[test]
    fn users_read_no_library_advice_and_no_unknown_key_segments() {
        let e = load("name: demo\nname: again\ndescription: d\nrequests: []\n").unwrap_err();
        assert_eq!(
            e.message,
            "`name` appears twice in the same mapping; keep one"
        );
        let e = load(&MINIMAL.replace("exit_code: 0", "exit_code: [zero]")).unwrap_err();
        assert!(e.key.as_deref().is_some_and(|k| !k.ends_with(".?")), "{e}");
    }

    #[test]
    fn placeholders_fail_until_filled() {
        let dir = std::env::temp_dir().join(format!("egress-placeholder-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("demo.yaml");
        std::fs::write(
            &file,
            MINIMAL.replace(
                "exit_code: 0",
                "exit_code: 0   # PLACEHOLDER: the good case",
            ),
        )
        .unwrap();
        let manifests = Path::new(env!("CARGO_MANIFEST_DIR")).join("../manifests");
        let errors = load_file(&file, &manifests).unwrap_err();
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].line, Some(7));
        assert!(load_unfinished(&file, &manifests).is_ok());
        std::fs::write(&file, MINIMAL).unwrap();
        assert!(load_file(&file, &manifests).is_ok());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn wrong_type_and_bad_regex_are_located() {
        let e = load(&MINIMAL.replace("exit_code: 0", "status: many")).unwrap_err();
        assert_eq!(
            (e.line, e.key.as_deref()),
            (Some(7), Some("requests[0].expect.status"))
        );
        let e = load(&MINIMAL.replace("exit_code: 0", "stderr: {matches: '(('}")).unwrap_err();
        assert_eq!(e.key.as_deref(), Some("requests[0].expect.stderr"));
        assert!(e.message.contains("regular expression"), "{e}");
    }

    #[test]
    fn empty_broken_and_binary_inputs_are_errors() {
        assert!(load("").unwrap_err().message.contains("empty"));
        assert!(
            load("# only a comment\n")
                .unwrap_err()
                .message
                .contains("empty")
        );
        assert!(load("name: [demo\n").is_err());
        assert!(load("\0\u{1}\u{2}").unwrap_err().message.contains("NUL"));
        assert!(load("- a\n- b\n").is_err());
    }

    #[test]
    fn clients_steps_and_hosts_are_checked_where_they_are_written() {
        let dir = std::env::temp_dir().join(format!("egress-load-steps-{}", std::process::id()));
        for d in ["install", "client", "routes"] {
            std::fs::create_dir_all(dir.join(d)).unwrap();
        }
        for f in [
            "install/registry-only.yaml",
            "client/curl.yaml",
            "client/other.yaml",
            "routes/a.yaml",
        ] {
            std::fs::write(dir.join(f), "").unwrap();
        }
        let text = "name: demo\ndescription: d\nupstream:\n  hosts: [en.wikipedia.org, \"*.wikipedia.org\", 10.0.0.1]\n  ports:\n    - {port: 9000, kind: tcp-echo}\n    - {port: 443, kind: tls-echo}\n    - {port: 9000, kind: https-client-cert}\n    - {port: 70000, kind: tcp-echo}\nclients:\n  - {name: other, manifest: other}\n  - {name: curl, manifest: other}\n  - {name: second, manifest: missing}\nrequests:\n  - name: r\n    client: nobody\n    before:\n      - apply: routes/a.yaml\n      - delete: routes/b.yaml\n    url: http://httpbin.org/\n    expect: {status: 200}\n  - name: s\n    client: other\n    before:\n      - delete: routes/a.yaml\n      - delete: routes/a.yaml\n    url: http://httpbin.org/\n    expect: {status: 200}\n";
        let s = load(text).unwrap();
        let problems = check(&s, &dir);
        let at = |key: &str| {
            problems
                .iter()
                .find(|p| p.key.as_deref() == Some(key))
                .unwrap_or_else(|| panic!("no problem at {key}: {problems:?}"))
        };
        assert_eq!(at("upstream.hosts[1]").line, Some(4));
        assert!(at("upstream.hosts[2]").message.contains("no IP"));
        assert_eq!(at("upstream.ports[1].port").line, Some(7));
        assert!(
            at("upstream.ports[1].port")
                .message
                .contains("own HTTPS port")
        );
        assert!(
            at("upstream.ports[2].port")
                .message
                .contains("declared twice")
        );
        assert!(
            at("upstream.ports[3].port")
                .message
                .contains("not a TCP port")
        );
        assert!(
            !problems
                .iter()
                .any(|p| p.key.as_deref() == Some("upstream.ports[0].port"))
        );
        assert!(
            !problems
                .iter()
                .any(|p| p.key.as_deref() == Some("upstream.hosts[0]"))
        );
        assert!(at("clients[1].name").message.contains("default client"));
        assert!(at("clients[2].manifest").message.contains("not found"));
        assert!(
            at("requests[0].client")
                .message
                .contains("no client `nobody`")
        );
        assert!(
            at("requests[0].before[1].delete")
                .message
                .contains("not applied at this point")
        );
        // Applied by the first request, deleted once by the second, not twice.
        assert!(
            !problems
                .iter()
                .any(|p| p.key.as_deref() == Some("requests[1].before[0].delete"))
        );
        assert_eq!(at("requests[1].before[1].delete").line, Some(26));
        assert!(
            !problems
                .iter()
                .any(|p| p.key.as_deref() == Some("requests[1].client"))
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_manifest_behind_a_link_is_refused() {
        let dir = std::env::temp_dir().join(format!("egress-load-links-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        for d in ["install", "client", "routes"] {
            std::fs::create_dir_all(dir.join(d)).unwrap();
        }
        for f in ["install/registry-only.yaml", "client/curl.yaml"] {
            std::fs::write(dir.join(f), "").unwrap();
        }
        std::os::unix::fs::symlink("/etc/hostname", dir.join("routes/a.yaml")).unwrap();
        std::os::unix::fs::symlink("/etc", dir.join("linked")).unwrap();
        let text = "name: demo\ndescription: d\nmanifests: [routes/a.yaml, linked/hostname]\nupstream:\n  local:\n    replace: {routes/a.yaml: ../../etc/passwd}\n  internet:\n    replace: {routes/a.yaml: linked/passwd}\nrequests:\n  - name: r\n    url: http://httpbin.org/\n    expect: {status: 200}\n";
        let s = load(text).unwrap();
        let problems = check(&s, &dir);
        for key in ["manifests[0]", "manifests[1]"] {
            let p = problems
                .iter()
                .find(|p| p.key.as_deref() == Some(key))
                .unwrap_or_else(|| panic!("{key}: {problems:?}"));
            assert!(p.message.contains("is a symbolic link"), "{}", p.message);
        }
        // What a manifest is replaced by is held to the same rules.
        let key = |k: &str| {
            problems
                .iter()
                .find(|p| p.key.as_deref() == Some(k))
                .map(|p| p.message.clone())
        };
        assert!(
            key("upstream.local.replace.routes/a.yaml")
                .is_some_and(|m| m.contains("inside manifests/")),
            "{problems:?}"
        );
        assert!(
            key("upstream.internet.replace.routes/a.yaml")
                .is_some_and(|m| m.contains("symbolic link")),
            "{problems:?}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_tcp_request_is_a_gopher_url_with_its_port() {
        let text = "name: demo\ndescription: d\nrequests:\n  - name: a\n    url: gopher://db.example.com:5432/_x\n    expect: {status: 0}\n  - name: b\n    url: gophers://mq.example.com/_x\n    expect: {status: 0}\n  - name: c\n    url: telnet://db.example.com:5432\n    expect: {status: 0}\n";
        let s = load(text).unwrap();
        let problems = check(&s, Path::new("/nonexistent-manifests"));
        let at = |key: &str| {
            problems
                .iter()
                .find(|p| p.key.as_deref() == Some(key))
                .map(|p| p.message.clone())
        };
        assert_eq!(at("requests[0].url"), None, "{problems:?}");
        assert!(at("requests[1].url").is_some_and(|m| m.contains("needs its port")));
        assert!(at("requests[2].url").is_some_and(|m| m.contains("gopher://")));
    }

    #[test]
    fn a_patch_names_an_applied_file_an_object_and_a_map() {
        let text = "name: demo\ndescription: d\nrequests:\n  - name: r\n    before:\n      - patch: {file: routes/a.yaml, object: nameonly, merge: [1]}\n    url: http://httpbin.org/\n    expect: {status: 200}\n";
        let s = load(text).unwrap();
        let problems = check(&s, Path::new("/nonexistent-manifests"));
        let keys: Vec<_> = problems.iter().filter_map(|p| p.key.clone()).collect();
        for want in [
            "requests[0].before[0].patch.file",
            "requests[0].before[0].patch.object",
            "requests[0].before[0].patch.merge",
        ] {
            assert!(keys.iter().any(|k| k == want), "missing {want} in {keys:?}");
        }
    }

    #[test]
    fn a_burst_and_its_shares_are_checked() {
        let text = "name: demo\ndescription: d\nrequests:\n  - name: one\n    url: http://httpbin.org/\n    repeat: {count: 1, concurrency: 2}\n    expect: {share: [{status: 503, at_least: 1.5}]}\n  - name: lone\n    url: http://httpbin.org/\n    expect: {share: [{status: 503, at_least: 0.1}]}\n";
        let s = load(text).unwrap();
        let problems = check(&s, Path::new("/nonexistent-manifests"));
        let keys: Vec<_> = problems.iter().filter_map(|p| p.key.clone()).collect();
        for want in [
            "requests[0].repeat.count",
            "requests[0].repeat.concurrency",
            "requests[0].expect.share[0]",
            "requests[1].expect.share[0]",
        ] {
            assert!(keys.iter().any(|k| k == want), "missing {want} in {keys:?}");
        }
        assert!(
            problems
                .iter()
                .any(|p| p.message.contains("give the request `repeat"))
        );
    }

    #[test]
    fn semantic_checks_collect_every_problem() {
        let dir = std::env::temp_dir().join("egress-load-test-manifests");
        std::fs::create_dir_all(dir.join("install")).unwrap();
        std::fs::create_dir_all(dir.join("client")).unwrap();
        std::fs::write(dir.join("install/registry-only.yaml"), "").unwrap();
        std::fs::write(dir.join("client/curl.yaml"), "").unwrap();
        let text = MINIMAL.replace("name: demo\n", "name: Demo\nmanifests: [missing.yaml]\n")
            + "  - name: r\n    url: ftp://x\n    curl_args: [-o]\n    expect: {}\n";
        let s = load(&text).unwrap();
        let problems = check(&s, &dir);
        let keys: Vec<_> = problems.iter().filter_map(|p| p.key.clone()).collect();
        for want in [
            "name",
            "manifests[0]",
            "requests[1].name",
            "requests[1].url",
            "requests[1].curl_args[0]",
            "requests[1].expect",
        ] {
            assert!(keys.iter().any(|k| k == want), "missing {want} in {keys:?}");
        }
        let missing = problems
            .iter()
            .find(|p| p.key.as_deref() == Some("manifests[0]"))
            .unwrap();
        assert_eq!(missing.line, Some(2));
    }
}
