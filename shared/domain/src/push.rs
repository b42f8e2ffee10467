//! Which Web Push endpoints vcare will call. A subscription's `endpoint`
//! comes from the caller, so it is a way in (SSRF): only `https` on a host
//! of the push services' allowlist (`PushServiceHosts`), or — for tests
//! only, `PushAllowLoopback` — a loopback service.

/// The push services of Google (FCM), Mozilla, Apple and Microsoft. An
/// entry `*.example.com` takes every subdomain of `example.com`.
pub const DEFAULT_PUSH_SERVICE_HOSTS: &str =
    "fcm.googleapis.com,updates.push.services.mozilla.com,*.push.apple.com,*.notify.windows.com";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushEndpoints {
    hosts: Vec<String>,
    pub allow_loopback: bool,
}

impl Default for PushEndpoints {
    fn default() -> Self {
        Self::parse(DEFAULT_PUSH_SERVICE_HOSTS, false).expect("the default list parses")
    }
}

/// `127.0.0.0/8`, `localhost`, `[::1]`.
pub fn is_loopback_host(host: &str) -> bool {
    host == "localhost"
        || host == "[::1]"
        || host.strip_prefix("127.").is_some_and(|rest| {
            let parts: Vec<&str> = rest.split('.').collect();
            parts.len() == 3 && parts.iter().all(|p| p.parse::<u8>().is_ok())
        })
}

fn is_host_name(h: &str) -> bool {
    !h.is_empty()
        && h.len() <= 253
        && h.split('.').all(|label| {
            (1..=63).contains(&label.len())
                && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

impl PushEndpoints {
    /// From a comma-separated list of hosts and `*.` suffixes.
    pub fn parse(list: &str, allow_loopback: bool) -> Result<Self, String> {
        let mut hosts = Vec::new();
        for entry in list.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let entry = entry.to_ascii_lowercase();
            if !is_host_name(entry.strip_prefix("*.").unwrap_or(&entry)) {
                return Err(format!("{entry:?} is not a host name or *.suffix"));
            }
            hosts.push(entry);
        }
        Ok(Self { hosts, allow_loopback })
    }

    /// The endpoint's host (lowercase, without port) if vcare may call it;
    /// otherwise why not.
    pub fn check(&self, endpoint: &str) -> Result<String, String> {
        let (scheme, rest) = endpoint.split_once("://").ok_or("not a URL")?;
        let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
        if authority.contains('@') {
            return Err("credentials in the URL".into());
        }
        let raw_host = match authority.strip_prefix('[') {
            Some(v6) => format!("[{}]", v6.split(']').next().unwrap_or_default()),
            None => authority.split(':').next().unwrap_or_default().to_owned(),
        };
        let port = &authority[raw_host.len().min(authority.len())..];
        if !port.is_empty() && port.strip_prefix(':').is_none_or(|p| p.parse::<u16>().is_err()) {
            return Err("not a URL".into());
        }
        let host = raw_host.to_ascii_lowercase();
        if self.allow_loopback && is_loopback_host(&host) && matches!(scheme, "http" | "https") {
            return Ok(host);
        }
        if scheme != "https" {
            return Err("not https".into());
        }
        let listed = self.hosts.iter().any(|h| match h.strip_prefix("*.") {
            Some(suffix) => host.strip_suffix(suffix).is_some_and(|sub| sub.len() > 1 && sub.ends_with('.')),
            None => *h == host,
        });
        if !listed || !is_host_name(&host) {
            return Err("not a push service vcare knows".into());
        }
        Ok(host)
    }
}

/// The endpoint of a Web Push subscription token (`{"endpoint", "keys"}`).
pub fn subscription_endpoint(token: &str) -> Option<String> {
    let sub: serde_json::Value = serde_json::from_str(token).ok()?;
    sub.get("endpoint")?.as_str().map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_https_on_a_listed_push_service() {
        let p = PushEndpoints::default();
        for ok in [
            "https://fcm.googleapis.com/fcm/send/abc",
            "https://updates.push.services.mozilla.com/wpush/v2/x",
            "https://web.push.apple.com/QGx",
            "https://wns2-par02p.notify.windows.com/w/?token=1",
            "https://FCM.googleapis.com:443/fcm/send/abc",
        ] {
            assert!(p.check(ok).is_ok(), "{ok}");
        }
        for bad in [
            "http://fcm.googleapis.com/fcm/send/abc",
            "http://127.0.0.1:9001/2018-06-01/runtime/invocation/next",
            "https://127.0.0.1/x",
            "https://169.254.169.254/latest/meta-data",
            "https://push.apple.com/x",
            "https://evilpush.apple.com.attacker.example/x",
            "https://fcm.googleapis.com.attacker.example/x",
            "https://attacker.example/fcm.googleapis.com",
            "https://fcm.googleapis.com@attacker.example/x",
            "https://fcm.googleapis.com:99999/x",
            "https://FCM.googleapis.com:99999/x",
            "https://fcm.googleapis.com:/x",
            "ftp://fcm.googleapis.com/x",
            "fcm.googleapis.com/x",
            "",
        ] {
            assert!(p.check(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn loopback_only_when_allowed_and_the_list_parses_strictly() {
        let tests = PushEndpoints::parse("push.example.org", true).unwrap();
        assert_eq!(tests.check("http://127.0.0.1:8080/push").unwrap(), "127.0.0.1");
        assert!(tests.check("http://localhost/push").is_ok());
        assert!(tests.check("http://10.0.0.1/push").is_err());
        assert!(tests.check("https://push.example.org/x").is_ok());
        assert!(PushEndpoints::default().check("http://localhost/push").is_err());
        assert!(PushEndpoints::parse("ok.example, bad host", false).is_err());
        assert!(PushEndpoints::parse("*.", false).is_err());
        assert!(!is_loopback_host("127.0.0.1.attacker.example"));
    }
}
