//! File discovery: `endpoints_file` on a cluster names a JSON or TOML file
//! holding the endpoint list, read with every configuration build and
//! watched by the `ringway-discovery` thread (`server::discovery`), which
//! applies a change the way a reload does: new connections go to the new
//! set, requests in flight finish, idle pooled connections to removed
//! endpoints are closed.
//!
//! The file (JSON; `.toml` files in TOML with the same shape):
//! ```json
//! [ "10.0.0.11:8080",
//!   { "address": "10.0.0.12:8080", "weight": 2, "zone": "b", "metadata": { "version": "1.4" } } ]
//! ```
//! or `{ "endpoints": [ ... ] }` (TOML: `endpoints = [ ... ]`). `zone`
//! feeds zone-aware routing (`prefer_zone`); `metadata` is accepted (for
//! the etcd format to match) and not used yet.

use std::path::Path;

use super::file::{EndpointFile, WeightedEndpointFile};

/// Largest endpoints file read.
pub const MAX_ENDPOINTS_FILE: u64 = 4 * 1024 * 1024;

/// The endpoints listed in `path`, or what is wrong with it.
pub fn read_endpoints_file(path: &Path) -> Result<Vec<EndpointFile>, String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if meta.len() > MAX_ENDPOINTS_FILE {
        return Err(format!(
            "{}: {} bytes, more than the {MAX_ENDPOINTS_FILE} an endpoints file may have",
            path.display(),
            meta.len()
        ));
    }
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let toml = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("toml"));
    let doc: serde_json::Value = if toml {
        toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?
    } else {
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?
    };
    parse(&doc).map_err(|m| format!("{}: {m}", path.display()))
}

fn parse(doc: &serde_json::Value) -> Result<Vec<EndpointFile>, String> {
    let list =
        match doc {
            serde_json::Value::Array(a) => a,
            serde_json::Value::Object(o) => match o.get("endpoints") {
                Some(serde_json::Value::Array(a)) if o.len() == 1 => a,
                _ => return Err(
                    "expected a list of endpoints, or { \"endpoints\": [...] } and nothing else"
                        .into(),
                ),
            },
            _ => return Err("expected a list of endpoints".into()),
        };
    list.iter()
        .enumerate()
        .map(|(i, e)| match e {
            serde_json::Value::String(s) => Ok(EndpointFile::Address(s.clone())),
            serde_json::Value::Object(o) => {
                for k in o.keys() {
                    if !matches!(k.as_str(), "address" | "weight" | "zone" | "metadata") {
                        return Err(format!(
                            "endpoint {}: unknown key {k:?} (address, weight, zone, metadata)",
                            i + 1
                        ));
                    }
                }
                let address = o
                    .get("address")
                    .and_then(|a| a.as_str())
                    .ok_or_else(|| format!("endpoint {}: no \"address\" string", i + 1))?;
                let weight = match o.get("weight") {
                    None => None,
                    Some(w) => Some(w.as_i64().ok_or_else(|| {
                        format!("endpoint {}: \"weight\" is not an integer", i + 1)
                    })?),
                };
                let zone = match o.get("zone") {
                    None => None,
                    Some(serde_json::Value::String(z)) => Some(z.clone()),
                    Some(_) => return Err(format!("endpoint {}: \"zone\" is not a string", i + 1)),
                };
                Ok(EndpointFile::Weighted(WeightedEndpointFile {
                    address: address.to_owned(),
                    weight,
                    zone,
                }))
            }
            _ => Err(format!(
                "endpoint {}: expected \"host:port\" or {{ \"address\": ... }}",
                i + 1
            )),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(name: &str, text: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("ringway-discovery-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn json_and_toml_lists() {
        let p = write(
            "a.json",
            r#"["127.0.0.1:1", {"address": "127.0.0.1:2", "weight": 3, "zone": "b", "metadata": {"v": 1}}]"#,
        );
        let l = read_endpoints_file(&p).unwrap();
        assert_eq!(l.len(), 2);
        assert_eq!(l[1].address(), "127.0.0.1:2");
        let p = write("b.json", r#"{"endpoints": ["127.0.0.1:1"]}"#);
        assert_eq!(read_endpoints_file(&p).unwrap().len(), 1);
        let p = write(
            "c.toml",
            "endpoints = [\"127.0.0.1:1\", { address = \"127.0.0.1:2\", weight = 2 }]\n",
        );
        assert_eq!(read_endpoints_file(&p).unwrap().len(), 2);
    }

    #[test]
    fn problems_are_named() {
        for (text, want) in [
            ("{", "EOF"),
            ("{\"endpoints\": [], \"x\": 1}", "nothing else"),
            ("[1]", "endpoint 1"),
            ("[{\"weight\": 1}]", "no \"address\""),
            (
                "[{\"address\": \"a:1\", \"port\": 1}]",
                "unknown key \"port\"",
            ),
            (
                "[{\"address\": \"a:1\", \"weight\": \"x\"}]",
                "not an integer",
            ),
        ] {
            let p = write("bad.json", text);
            let e = read_endpoints_file(&p).unwrap_err();
            assert!(e.contains(want), "{text}: {e}");
        }
        let e = read_endpoints_file(Path::new("/nonexistent/eps.json")).unwrap_err();
        assert!(e.contains("/nonexistent/eps.json"), "{e}");
    }
}
