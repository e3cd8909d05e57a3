//! One HTTP service to post to (an Alertmanager, a remote-write receiver): its base URL
//! (`http://` or `https://`), its credentials (basic or bearer, from a file, or basic from the
//! URL's `user:password@`), extra headers and, for https, the certificates its certificate is
//! checked against (the system's, plus an optional CA file). [`Target::post`] sends one JSON
//! body on a fresh connection (hyper over async-net, TLS by rustls); [`Target::connect`] opens
//! a [`Link`] that posts many bodies on one kept-alive connection. Credentials never appear in
//! a log line, an error or `/api/status`: the URL shown everywhere is [`Target::url`], without
//! them.

mod auth;
mod link;

pub use auth::Auth;
pub use link::{Link, PostError};

use hyper::{Uri, header};
use link::tls_config;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// How long to wait for the TCP connection (and the TLS handshake).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long to wait for the answer once connected.
pub const RESPONSE_TIMEOUT: Duration = Duration::from_secs(10);

/// What kind of service a target is: its name in messages, the flag that gives it, and an
/// example of its URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Service {
    pub name: &'static str,
    pub flag: &'static str,
    pub example: &'static str,
}

/// Prometheus Alertmanager (its base URL; alerts go to `/api/v2/alerts` below it).
pub const ALERTMANAGER: Service = Service {
    name: "Alertmanager",
    flag: "--alertmanager",
    example: "Alertmanager's base URL, e.g. http://127.0.0.1:9093",
};

/// Why a target cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    #[error("{flag} {url:?}: {reason}; give {example}")]
    BadUrl {
        flag: &'static str,
        example: &'static str,
        url: String,
        reason: String,
    },
    #[error("{path}: {reason}")]
    Credentials { path: String, reason: String },
    #[error("{path}: {reason}")]
    Certificates { path: String, reason: String },
}

/// One service to post to.
#[derive(Clone)]
pub struct Target {
    service: Service,
    /// The base URL without credentials: what logs and `/api/status` show.
    url: String,
    host: String,
    port: u16,
    /// `host[:port]` for the `Host` header.
    authority: String,
    /// The base URL's path, without a trailing `/`.
    prefix: String,
    auth: Option<Auth>,
    /// Sent with every request (never logged: they may carry a tenant's secret).
    headers: Vec<(header::HeaderName, header::HeaderValue)>,
    /// Present for https.
    tls: Option<Arc<rustls::ClientConfig>>,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("url", &self.url)
            .field("auth", &self.auth)
            .field("tls", &self.tls.is_some())
            .finish()
    }
}

impl PartialEq for Target {
    fn eq(&self, other: &Self) -> bool {
        self.url == other.url
            && self.auth == other.auth
            && self.headers == other.headers
            && self.tls.is_some() == other.tls.is_some()
    }
}

impl Target {
    /// A target from its base URL (`http[s]://[user:password@]HOST[:PORT][/PATH]`), the
    /// credentials file (which wins over credentials in the URL) and, for https, a file of
    /// extra CA certificates (PEM).
    pub fn new(
        url: &str,
        auth_file: Option<&Path>,
        ca_file: Option<&Path>,
    ) -> Result<Target, TargetError> {
        let auth = auth_file.map(Auth::read).transpose()?;
        Target::of(ALERTMANAGER, url, auth, ca_file)
    }

    /// A target of `service` from its URL, credentials (which win over credentials in the
    /// URL) and, for https, a file of extra CA certificates (PEM).
    pub fn of(
        service: Service,
        url: &str,
        auth_given: Option<Auth>,
        ca_file: Option<&Path>,
    ) -> Result<Target, TargetError> {
        let bad = |reason: &str| TargetError::BadUrl {
            flag: service.flag,
            example: service.example,
            // Never repeat credentials, even in an error.
            url: without_credentials(url),
            reason: reason.to_string(),
        };
        let uri: Uri = url.trim().parse().map_err(|_| bad("not a URL"))?;
        let https = match uri.scheme_str() {
            Some("http") => false,
            Some("https") => true,
            Some(_) => return Err(bad("only http:// and https:// are supported")),
            None => return Err(bad("it has no http:// or https:// scheme")),
        };
        let host = uri
            .host()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| bad("it has no host"))?;
        if uri.query().is_some() {
            return Err(bad("a base URL has no query"));
        }
        let authority = uri.authority().map_or("", |a| a.as_str());
        let (userinfo, host_and_port) = match authority.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, authority),
        };
        let port = port_in(host_and_port, https).map_err(bad)?;
        // Credentials given apart win over those in the URL.
        let auth = auth_given.or_else(|| userinfo.map(url_credentials));
        let prefix = uri.path().trim_end_matches('/').to_string();
        let scheme = if https { "https" } else { "http" };
        let tls = if https {
            Some(Arc::new(tls_config(ca_file)?))
        } else {
            None
        };
        Ok(Target {
            service,
            url: format!("{scheme}://{host_and_port}{prefix}"),
            host: host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_string(),
            port,
            authority: host_and_port.to_string(),
            prefix,
            auth,
            headers: Vec::new(),
            tls,
        })
    }

    /// Adds a header sent with every request; refuses names the protocol sets itself.
    pub fn with_header(mut self, name: &str, value: &str) -> Result<Target, TargetError> {
        const RESERVED: [&str; 9] = [
            "authorization",
            "content-encoding",
            "content-type",
            "content-length",
            "host",
            "user-agent",
            "connection",
            "transfer-encoding",
            "x-prometheus-remote-write-version",
        ];
        let bad = |reason: String| TargetError::BadUrl {
            flag: self.service.flag,
            example: self.service.example,
            url: self.url.clone(),
            reason,
        };
        let header_name = header::HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| bad(format!("header {name:?} is not a header name")))?;
        if RESERVED.contains(&header_name.as_str()) {
            return Err(bad(format!(
                "header {name:?} is set by nms itself (credentials go in an auth file)"
            )));
        }
        let header_value = header::HeaderValue::from_str(value).map_err(|_| {
            bad(format!(
                "the value of header {name:?} is not a header value"
            ))
        })?;
        self.headers.push((header_name, header_value));
        Ok(self)
    }

    /// What kind of service this is.
    pub fn service(&self) -> Service {
        self.service
    }

    /// The base URL, without credentials.
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn has_credentials(&self) -> bool {
        self.auth.is_some()
    }
}

/// The port of `host[:port]` (an IPv6 host in brackets), or the scheme's own.
fn port_in(host_and_port: &str, https: bool) -> Result<u16, &'static str> {
    let after_host = host_and_port
        .rsplit_once(']')
        .map_or(host_and_port, |(_, rest)| rest);
    match after_host.rsplit_once(':') {
        None => Ok(if https { 443 } else { 80 }),
        Some((_, p)) => match p.parse::<u16>() {
            Ok(p) if p > 0 => Ok(p),
            _ => Err("its port is not a number from 1 to 65535"),
        },
    }
}

/// Basic credentials from a URL's `user:password` (percent-encoded there).
fn url_credentials(userinfo: &str) -> Auth {
    let (user, password) = userinfo.split_once(':').unwrap_or((userinfo, ""));
    Auth::Basic {
        user: percent_decode(user),
        password: percent_decode(password),
    }
}

/// `url` with any `user:password@` removed.
pub fn without_credentials(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let end = rest.find('/').unwrap_or(rest.len());
    match rest[..end].rsplit_once('@') {
        Some((_, host)) => format!("{scheme}://{host}{}", &rest[end..]),
        None => url.to_string(),
    }
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(v) = text
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests;
