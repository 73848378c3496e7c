//! `egress new-scenario NAME --from FILE.yaml…`: a bug report's YAML turned into a
//! scenario. The files are copied as given (comments and all) to
//! `manifests/repro/NAME/`; the scenario gets one request to the ServiceEntry's host
//! and expectations marked `PLACEHOLDER` to be replaced by what the report says
//! should happen. Nothing is overwritten.

use std::path::{Path, PathBuf};

use crate::manifest::{self, Object};
use crate::suite::Workspace;

/// What was written, and what the strict checks said about it.
#[derive(Debug)]
pub struct Scaffold {
    pub scenario_file: PathBuf,
    pub manifest_files: Vec<PathBuf>,
    /// Problems found by `egress validate`'s checks, placeholders aside.
    pub problems: Vec<String>,
    /// The marked guesses left to fill in; `egress validate` fails until they are.
    pub placeholders: Vec<String>,
}

/// What the scaffold reads off the objects to pick a request.
#[derive(Debug, Default, PartialEq, Eq)]
struct Facts {
    host: Option<String>,
    http_port: bool,
    tls_port: bool,
    via_gateway: bool,
    namespaced_elsewhere: Vec<String>,
}

fn facts(objects: &[Object]) -> Facts {
    let mut f = Facts::default();
    for o in objects {
        match o.kind.as_str() {
            "ServiceEntry" => {
                if f.host.is_none() {
                    f.host = o.spec()["hosts"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|h| h.as_str())
                        .find(|h| !h.starts_with('*'))
                        .map(str::to_owned);
                }
                for port in o.spec()["ports"].as_array().into_iter().flatten() {
                    let protocol = port["protocol"].as_str().unwrap_or("").to_ascii_uppercase();
                    match protocol.as_str() {
                        "HTTP" | "HTTP2" => f.http_port = true,
                        "HTTPS" | "TLS" => f.tls_port = true,
                        _ => {}
                    }
                }
            }
            "Gateway" if !o.is_gateway_api() => f.via_gateway = true,
            _ => {}
        }
        if let Some(ns) = &o.namespace {
            f.namespaced_elsewhere
                .push(format!("{} (namespace {ns})", o.id()));
        }
    }
    f
}

/// A scenario name is also a namespace: a DNS label.
pub fn check_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.starts_with('-')
        && !name.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "scenario name `{name}`: use lowercase letters, digits and `-` (at most 63; it is also the namespace), e.g. istio-37293-tls-istio-mutual"
        ))
    }
}

pub fn scaffold(ws: &Workspace, name: &str, inputs: &[PathBuf]) -> Result<Scaffold, String> {
    check_name(name)?;
    if inputs.is_empty() {
        return Err("give the bug report's YAML with --from FILE.yaml (repeatable)".into());
    }
    let scenario_file = ws.scenarios_dir().join(format!("{name}.yaml"));
    let manifest_dir = ws.manifests_dir().join("repro").join(name);
    for taken in [&scenario_file, &manifest_dir] {
        if taken.exists() {
            return Err(format!(
                "{} exists already; choose another name or remove it",
                taken.display()
            ));
        }
    }
    // Read and check everything before writing anything.
    let mut objects = Vec::new();
    let mut names: Vec<String> = Vec::new();
    // The reporter's namespaces, from every file, become the scenario's (istio-system,
    // the gateway's, stays): the harness makes one namespace per scenario.
    let mut texts = Vec::new();
    for input in inputs {
        let raw =
            std::fs::read_to_string(input).map_err(|e| format!("{}: {e}", input.display()))?;
        // As pasted from a report: `kubectl apply -f - <<EOF` … `EOF` around the YAML.
        texts.push(without_shell(&raw));
    }
    let mut moved: Vec<String> = Vec::new();
    for (input, text) in inputs.iter().zip(&texts) {
        for o in manifest::parse_str(text, input).map_err(|p| p.to_string())? {
            if let Some(ns) = o.namespace
                && ns != crate::model::mesh::ISTIO_NAMESPACE
                && !moved.contains(&ns)
            {
                moved.push(ns);
            }
        }
    }
    for (input, text) in inputs.iter().zip(texts.iter_mut()) {
        *text = into_scenario_namespace(text, &moved);
        // Read again after the rewrite: an object whose namespace is still a moved
        // one (a spelling the rewrite missed) keeps it, and the scenario says so.
        // `${namespace}` is filled in when the scenario runs (in a flow mapping it is
        // no YAML scalar until then): read with a stand-in name.
        const SCENARIO: &str = "egress-new-scenario-namespace";
        let found = manifest::parse_str(&text.replace("${namespace}", SCENARIO), input)
            .map_err(|p| p.to_string())?;
        if found.is_empty() {
            return Err(format!("{}: no Kubernetes objects in it", input.display()));
        }
        objects.extend(found.into_iter().map(|mut o| {
            if o.namespace.as_deref() == Some(SCENARIO) {
                o.namespace = None;
            }
            o
        }));
        let base = input
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("manifest.yaml")
            .to_owned();
        let base = if base.ends_with(".yaml") || base.ends_with(".yml") {
            base
        } else {
            format!("{base}.yaml")
        };
        let mut unique = base.clone();
        let mut n = 2;
        while names.contains(&unique) {
            unique = format!("{n}-{base}");
            n += 1;
        }
        names.push(unique);
    }

    std::fs::create_dir_all(&manifest_dir)
        .map_err(|e| format!("{}: {e}", manifest_dir.display()))?;
    let mut manifest_files = Vec::new();
    for (text, file) in texts.iter().zip(&names) {
        let dest = manifest_dir.join(file);
        std::fs::write(&dest, text).map_err(|e| format!("{}: {e}", dest.display()))?;
        manifest_files.push(dest);
    }
    let relative: Vec<String> = names.iter().map(|f| format!("repro/{name}/{f}")).collect();
    let text = scenario_text(name, &relative, &facts(&objects), inputs, &moved);
    std::fs::write(&scenario_file, &text)
        .map_err(|e| format!("{}: {e}", scenario_file.display()))?;

    let problems = check(ws, &scenario_file);
    let placeholders = crate::scenario::placeholders(&text, &scenario_file)
        .iter()
        .map(ToString::to_string)
        .collect();
    Ok(Scaffold {
        scenario_file,
        manifest_files,
        problems,
        placeholders,
    })
}

/// The checks `egress validate` runs on one file, its placeholders aside.
fn check(ws: &Workspace, file: &Path) -> Vec<String> {
    match crate::scenario::load_unfinished(file, &ws.manifests_dir()) {
        Err(errors) => errors.iter().map(ToString::to_string).collect(),
        Ok(s) => crate::validate::check_manifests(&s, ws)
            .into_iter()
            .chain(crate::validate::check_consistency(&s, ws))
            .map(|p| p.to_string())
            .collect(),
    }
}

/// The report's text with shell around the YAML commented out, line for line (so a
/// problem's line number is still the report's): a heredoc's opening command
/// (`kubectl apply -f - <<EOF`, `cat <<'EOF' | kubectl apply -f -`) and its end.
fn without_shell(text: &str) -> String {
    let mut end: Option<String> = None;
    let mut out = String::new();
    for line in text.lines() {
        let trimmed = line.trim();
        // Shell sits at the start of a line; an indented `cat <<EOF` is YAML's (a
        // script in a block scalar) and stays as it is.
        let unindented = !line.starts_with([' ', '\t']);
        let opener = unindented
            .then_some(trimmed)
            .and_then(|t| t.split_once("<<"))
            .and_then(|(before, after)| {
                let word = after
                    .trim_start_matches('-')
                    .split_whitespace()
                    .next()?
                    .trim_matches(['\'', '"']);
                (before.contains("kubectl")
                    || before.starts_with("cat")
                    || after.contains("kubectl"))
                .then(|| word.to_owned())
            });
        if let Some(word) = opener.filter(|w| !w.is_empty()) {
            end = Some(word);
            out.push_str("# ");
        } else if unindented && end.as_deref() == Some(trimmed) {
            end = None;
            out.push_str("# ");
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// `text` with each of `namespaces` replaced by the scenario's (`${namespace}`,
/// which manifests may use): as an object's namespace, a host's `NS/` prefix and a
/// Service FQDN's `.NS.svc`. Host names that merely contain the word are untouched.
fn into_scenario_namespace(text: &str, namespaces: &[String]) -> String {
    let mut out = text.to_owned();
    for ns in namespaces {
        for (from, to) in [
            (
                format!("namespace: {ns}\n"),
                "namespace: ${namespace}\n".to_owned(),
            ),
            (
                format!("namespace: {ns},"),
                "namespace: ${namespace},".to_owned(),
            ),
            (
                format!("namespace: {ns}}}"),
                "namespace: ${namespace}}".to_owned(),
            ),
            (
                format!("namespace: \"{ns}\""),
                "namespace: \"${namespace}\"".to_owned(),
            ),
            (format!(" {ns}/"), " ${namespace}/".to_owned()),
            (format!("\"{ns}/"), "\"${namespace}/".to_owned()),
            (format!("[{ns}/"), "[${namespace}/".to_owned()),
            (format!(".{ns}.svc"), ".${namespace}.svc".to_owned()),
        ] {
            out = out.replace(&from, &to);
        }
    }
    out
}

/// A request named after its host: `api.example.com` → `api-example-com`.
fn request_name(host: &str) -> String {
    let name: String = host
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    let name = name.trim_matches('-').to_owned();
    if name.is_empty() {
        "request".into()
    } else {
        name
    }
}

fn scenario_text(
    name: &str,
    manifests: &[String],
    f: &Facts,
    inputs: &[PathBuf],
    moved: &[String],
) -> String {
    let host = f.host.clone().unwrap_or_else(|| "httpbin.org".into());
    let url = if f.tls_port && !f.http_port {
        format!("https://{host}/headers")
    } else {
        format!("http://{host}/headers")
    };
    let from: Vec<String> = inputs.iter().map(|p| p.display().to_string()).collect();
    let mut out = format!(
        "# Scaffolded by `egress new-scenario` from {from}.\n\
         # Each marked line below is a guess: replace it with what the bug report says\n\
         # should happen (or happens) and delete its marker; `egress validate\n\
         # scenarios/{name}.yaml` fails while a marker is left.\n\
         name: {name}\n\
         description: \"PLACEHOLDER: one line on what this reproduces\"\n\
         tags: [repro]\n\
         # PLACEHOLDER: the Istio bug this shows, and the versions it affects.\n\
         # known_issue: {{url: https://github.com/istio/istio/issues/NNNNN, versions: \">=1.22\", mode: xfail}}\n\
         manifests:\n",
        from = from.join(", ")
    );
    for m in manifests {
        out.push_str(&format!("  - {m}\n"));
    }
    let other_host = !crate::upstream::HOSTS.contains(&host.as_str());
    // A name the local echo server can take as an alias; a wildcard or an address cannot.
    let servable = host.contains('.')
        && !host.contains('*')
        && host.parse::<std::net::IpAddr>().is_err()
        && host
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.');
    for ns in moved {
        out.push_str(&format!(
            "# The report's namespace {ns} became the scenario's (${{namespace}} in the manifests above).\n"
        ));
    }
    for object in &f.namespaced_elsewhere {
        out.push_str(&format!(
            "# {object} keeps its own namespace; everything else goes into the scenario's.\n"
        ));
    }
    if other_host || url.starts_with("https://") {
        out.push_str("upstream:\n");
    }
    if other_host && servable {
        out.push_str(&format!(
            "  # The harness's own upstream answers as the report's host too.\n\
             \x20 hosts: [{host}]\n"
        ));
    } else if other_host {
        out.push_str(&format!(
            "  # The harness's own upstream cannot answer as {host}: this runs with\n\
             \x20 # --upstream internet only, unless the manifests name a host it can serve\n\
             \x20 # (list it under `hosts`, then delete this line).\n\
             \x20 internet_only: \"the report's host {host} is not served by the local upstream\"\n"
        ));
    }
    if url.starts_with("https://") {
        out.push_str(
            "  # curl speaks TLS itself; the harness's echo server has a certificate from the\n\
             \x20 # run's own CA, which the client pod does not carry.\n\
             \x20 local:\n\
             \x20   curl_args: [--insecure]\n",
        );
    }
    out.push_str(&format!(
        "requests:\n\
         \x20 - name: {request}\n\
         \x20   url: {url}   # PLACEHOLDER: the request from the report\n",
        request = request_name(&host)
    ));
    out.push_str(
        "    expect:\n\
         \x20     exit_code: 0   # PLACEHOLDER: curl's exit code in the good case\n\
         \x20     status: 200    # PLACEHOLDER: the HTTP status in the good case (0: no HTTP answer)\n",
    );
    if f.via_gateway {
        out.push_str(
            "      gateway_log: present   # PLACEHOLDER: fields of the gateway's line, e.g. upstream_cluster: {equals: \"outbound|443||HOST\"}\n",
        );
    } else {
        out.push_str(
            "      sidecar_log: present   # PLACEHOLDER: fields of the sidecar's line, e.g. upstream_cluster: {equals: \"outbound|443||HOST\"}\n",
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A workspace copy with the real manifests and no scenarios, in a temp dir.
    fn workspace(tag: &str) -> Workspace {
        let root =
            std::env::temp_dir().join(format!("egress-scaffold-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join("scenarios")).expect("mkdir");
        let real = Workspace::at(concat!(env!("CARGO_MANIFEST_DIR"), "/.."));
        copy_tree(&real.manifests_dir(), &root.join("manifests"));
        Workspace::at(root)
    }

    fn copy_tree(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).expect("mkdir");
        for entry in std::fs::read_dir(from).expect("read_dir").flatten() {
            let path = entry.path();
            if path.is_dir() {
                copy_tree(&path, &to.join(entry.file_name()));
            } else {
                std::fs::copy(&path, to.join(entry.file_name())).expect("copy");
            }
        }
    }

    const REPORT: &str = "\
# from the issue
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: httpbin
spec:
  hosts: [httpbin.org]
  location: MESH_EXTERNAL
  resolution: DNS
  ports:
    - {number: 80, name: http, protocol: HTTP}
    - {number: 443, name: tls, protocol: TLS}
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata:
  name: egress
spec:
  selector: {istio: egressgateway}
  servers:
    - port: {number: 80, name: http, protocol: HTTP}
      hosts: [httpbin.org]
";

    #[test]
    fn a_scaffold_validates_and_keeps_the_reports_yaml_as_given() {
        let ws = workspace("ok");
        let input = ws.root.join("issue.yaml");
        std::fs::write(&input, REPORT).expect("write");
        let s = scaffold(&ws, "repro-one", std::slice::from_ref(&input)).expect("scaffold");
        assert!(s.problems.is_empty(), "{:?}", s.problems);
        assert_eq!(s.placeholders.len(), 6, "{:?}", s.placeholders);
        let copied = std::fs::read_to_string(&s.manifest_files[0]).expect("copied");
        assert_eq!(copied, REPORT, "comments and all");
        let text = std::fs::read_to_string(&s.scenario_file).expect("scenario");
        assert!(text.contains("url: http://httpbin.org/headers"));
        assert!(text.contains("gateway_log: present   # PLACEHOLDER"));
        assert!(text.contains("description: \"PLACEHOLDER"));
        let unfinished = crate::scenario::load_file(&s.scenario_file, &ws.manifests_dir())
            .expect_err("placeholders fail validation");
        assert!(
            unfinished
                .iter()
                .all(|e| e.message.contains("PLACEHOLDER from `egress new-scenario`")),
            "{unfinished:?}"
        );
        let scenario = crate::scenario::load_unfinished(&s.scenario_file, &ws.manifests_dir())
            .expect("loads once filled in");
        assert_eq!(scenario.manifests[0].value, "repro/repro-one/issue.yaml");
        let _ = std::fs::remove_dir_all(&ws.root);
    }

    #[test]
    fn a_pasted_heredoc_in_the_reporter_s_namespace_becomes_the_scenario_s() {
        let ws = workspace("heredoc");
        let input = ws.root.join("pasted.txt");
        std::fs::write(
            &input,
            "kubectl apply -f - <<'EOF'\napiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata:\n  name: api\n  namespace: payments\nspec:\n  hosts: [api.example.com]\n  location: MESH_EXTERNAL\n  resolution: DNS\n  ports:\n  - {number: 443, name: https, protocol: HTTPS}\n---\napiVersion: networking.istio.io/v1\nkind: Sidecar\nmetadata: {name: default, namespace: payments}\nspec:\n  egress:\n  - hosts: [\"payments/*\", \"istio-system/*\", \"./payments.example.com\"]\nEOF\n",
        )
        .expect("write");
        let s = scaffold(&ws, "pasted", std::slice::from_ref(&input)).expect("scaffold");
        assert!(s.problems.is_empty(), "{:?}", s.problems);
        let manifest = std::fs::read_to_string(&s.manifest_files[0]).expect("written");
        assert!(
            manifest.starts_with("# kubectl apply -f - <<'EOF'\n"),
            "{manifest}"
        );
        assert!(manifest.ends_with("# EOF\n"), "{manifest}");
        let pasted = std::fs::read_to_string(&input).expect("read");
        assert_eq!(
            manifest.lines().count(),
            pasted.lines().count(),
            "line for line with the report:\n{manifest}"
        );
        assert!(!manifest.contains("namespace: payments"), "{manifest}");
        assert!(
            manifest.contains("\"${namespace}/*\", \"istio-system/*\""),
            "{manifest}"
        );
        assert!(
            manifest.contains("./payments.example.com"),
            "a host that merely contains it"
        );
        let text = std::fs::read_to_string(&s.scenario_file).expect("scenario");
        assert!(
            text.contains("namespace payments became the scenario's"),
            "{text}"
        );
        assert!(text.contains("  - name: api-example-com\n"), "{text}");
        assert!(!text.contains("keeps its own namespace"), "{text}");
        // A script's heredoc inside the YAML is the YAML's.
        let script = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: s}\ndata:\n  run.sh: |\n    cat <<EOF > /tmp/x\n    hi\n    EOF\n";
        assert_eq!(without_shell(script), script);
    }

    #[test]
    fn a_namespace_named_in_one_file_moves_in_all_of_them() {
        let ws = workspace("across");
        let se = ws.root.join("se.yaml");
        std::fs::write(
            &se,
            "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: api, namespace: demo}\nspec: {hosts: [api.example.com], location: MESH_EXTERNAL, resolution: DNS, ports: [{number: 80, name: http, protocol: HTTP}]}\n",
        )
        .expect("write");
        let sidecar = ws.root.join("sidecar.yaml");
        std::fs::write(
            &sidecar,
            "apiVersion: networking.istio.io/v1\nkind: Sidecar\nmetadata: {name: default}\nspec:\n  egress:\n  - hosts: [\"demo/*\", \"istio-system/*\"]\n",
        )
        .expect("write");
        let s = scaffold(&ws, "across", &[se, sidecar]).expect("scaffold");
        let second = std::fs::read_to_string(&s.manifest_files[1]).expect("written");
        assert!(second.contains("\"${namespace}/*\""), "{second}");
        // A spelling the rewrite does not know keeps its namespace, and says so.
        let quoted = ws.root.join("quoted.yaml");
        std::fs::write(
            &quoted,
            "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata:\n  name: api\n  namespace: 'demo'   # the reporter's\nspec: {hosts: [api.example.com], location: MESH_EXTERNAL, resolution: DNS, ports: [{number: 80, name: http, protocol: HTTP}]}\n",
        )
        .expect("write");
        let s = scaffold(&ws, "quoted", &[quoted]).expect("scaffold");
        let text = std::fs::read_to_string(&s.scenario_file).expect("scenario");
        assert!(text.contains("keeps its own namespace"), "{text}");
    }

    #[test]
    fn nothing_is_written_over_or_from_bad_input() {
        let ws = workspace("bad");
        let input = ws.root.join("issue.yaml");
        std::fs::write(&input, REPORT).expect("write");
        assert!(check_name("Bad_Name").is_err());
        let not_yaml = ws.root.join("notes.txt");
        std::fs::write(&not_yaml, "this: [is not closed").expect("write");
        let err = scaffold(&ws, "repro-two", &[input.clone(), not_yaml]).expect_err("bad yaml");
        assert!(err.contains("notes.txt"), "{err}");
        assert!(
            !ws.scenarios_dir().join("repro-two.yaml").exists()
                && !ws.manifests_dir().join("repro/repro-two").exists(),
            "nothing written when an input is bad"
        );
        scaffold(&ws, "repro-two", std::slice::from_ref(&input)).expect("first");
        let err = scaffold(&ws, "repro-two", &[input]).expect_err("second");
        assert!(err.contains("exists already"), "{err}");
        let _ = std::fs::remove_dir_all(&ws.root);
    }

    #[test]
    fn other_hosts_and_tls_only_ports_are_said() {
        let f = Facts {
            host: Some("api.example.com".into()),
            tls_port: true,
            ..Facts::default()
        };
        let text = scenario_text("x", &["repro/x/a.yaml".into()], &f, &[], &[]);
        assert!(text.contains("url: https://api.example.com/headers"));
        assert!(text.contains("  hosts: [api.example.com]\n"), "{text}");
        assert!(text.contains("  local:\n    curl_args: [--insecure]"));
        assert_eq!(text.matches("upstream:\n").count(), 1, "{text}");
        let parsed = crate::scenario::load_str(&text, Path::new("x.yaml")).expect("parses");
        assert!(parsed.upstream.internet_only.is_none());
        assert_eq!(parsed.upstream.hosts[0].value, "api.example.com");
        // An address cannot be an alias of the echo server: internet only.
        let f = Facts {
            host: Some("203.0.113.7".into()),
            ..Facts::default()
        };
        let text = scenario_text("x", &["repro/x/a.yaml".into()], &f, &[], &[]);
        let parsed = crate::scenario::load_str(&text, Path::new("x.yaml")).expect("parses");
        assert!(parsed.upstream.internet_only.is_some(), "{text}");
        assert!(text.contains("sidecar_log: present"));
    }
}
