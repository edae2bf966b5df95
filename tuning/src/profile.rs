//! The recommended kernel settings. The one source of truth is
//! `packaging/60-ringway.conf`: it is embedded here, `ringway-tune sysctl`
//! prints it byte for byte, and `inspect` compares the running kernel
//! against the values it lists.

/// `packaging/60-ringway.conf`, as shipped.
pub const PROFILE: &str = include_str!("../../packaging/60-ringway.conf");

/// Where `sysctl --write` puts it by default.
pub const DEFAULT_PATH: &str = "/etc/sysctl.d/60-ringway.conf";

/// One `key = value` line of the profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    pub key: String,
    pub value: String,
    /// Written with a leading `-`: skipped quietly by `sysctl --system` on
    /// kernels without the key.
    pub optional: bool,
    /// The comment block above the line (the reason), without `#`.
    pub comment: String,
}

impl Setting {
    /// The line as it appears in the file (`-kernel.io_uring_disabled = 0`).
    pub fn line(&self) -> String {
        format!(
            "{}{} = {}",
            if self.optional { "-" } else { "" },
            self.key,
            self.value
        )
    }

    /// The file under `/proc/sys` holding this key.
    pub fn proc_path(&self) -> String {
        proc_path(&self.key)
    }
}

/// `net.core.somaxconn` → `/proc/sys/net/core/somaxconn`.
pub fn proc_path(key: &str) -> String {
    format!("/proc/sys/{}", key.replace('.', "/"))
}

/// Every setting of the profile, in file order.
pub fn settings() -> Vec<Setting> {
    parse(PROFILE)
}

/// The recommended setting for `key`. Panics if the profile lacks it: the
/// rules only ask for keys the profile has (a test checks every one).
pub fn setting(key: &str) -> Setting {
    settings()
        .into_iter()
        .find(|s| s.key == key)
        .unwrap_or_else(|| panic!("packaging/60-ringway.conf has no {key}"))
}

/// Parse sysctl.d text: comment blocks (a bare `#` line ends one) attach to
/// the settings that follow them.
pub fn parse(text: &str) -> Vec<Setting> {
    let mut out = Vec::new();
    let mut comment: Vec<&str> = Vec::new();
    let mut after_setting = false;
    for raw in text.lines() {
        let line = raw.trim();
        if line.is_empty() || line == "#" {
            comment.clear();
            after_setting = false;
            continue;
        }
        if let Some(c) = line.strip_prefix('#').or_else(|| line.strip_prefix(';')) {
            if after_setting {
                comment.clear();
                after_setting = false;
            }
            comment.push(c.trim());
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let key = key.trim();
        let (optional, key) = match key.strip_prefix('-') {
            Some(k) => (true, k),
            None => (false, key),
        };
        out.push(Setting {
            key: key.to_string(),
            value: normalize(value),
            optional,
            comment: comment.join(" "),
        });
        after_setting = true;
    }
    out
}

/// Whitespace between fields collapsed to one space, as `sysctl` prints it.
pub fn normalize(value: &str) -> String {
    value.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_shipped_profile() {
        let s = settings();
        assert!(s.len() >= 10, "{s:?}");
        let uring = &s[0];
        assert_eq!(uring.key, "kernel.io_uring_disabled");
        assert!(uring.optional);
        assert!(uring.comment.starts_with("io_uring:"), "{}", uring.comment);
        let port = setting("net.ipv4.ip_local_port_range");
        assert_eq!(port.value, "1024 65535");
        assert!(port.comment.contains("local ports"));
        // A comment block covers every line below it until the next one.
        assert_eq!(
            setting("net.ipv4.tcp_max_syn_backlog").comment,
            setting("net.core.somaxconn").comment
        );
        assert_eq!(
            proc_path("net.core.somaxconn"),
            "/proc/sys/net/core/somaxconn"
        );
    }
}
