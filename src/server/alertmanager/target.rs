//! One HTTP service to post to (an Alertmanager, a remote-write receiver): its base URL
//! (`http://` or `https://`), its credentials (basic or bearer, from a file, or basic from the
//! URL's `user:password@`), extra headers and, for https, the certificates its certificate is
//! checked against (the system's, plus an optional CA file). [`Target::post`] sends one JSON
//! body on a fresh connection (hyper over async-net, TLS by rustls); [`Target::connect`] opens
//! a [`Link`] that posts many bodies on one kept-alive connection. Credentials never appear in
//! a log line, an error or `/api/status`: the URL shown everywhere is [`Target::url`], without
//! them.

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::{Method, Request, Uri, header};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// How long to wait for the TCP connection (and the TLS handshake).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long to wait for the answer once connected.
pub const RESPONSE_TIMEOUT: Duration = Duration::from_secs(10);
/// Most bytes of an answer read (Alertmanager answers with little or nothing).
const MAX_ANSWER: usize = 64 * 1024;

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

/// How nms proves who it is to Alertmanager (or a proxy in front of it).
#[derive(Clone, PartialEq, Eq)]
pub enum Auth {
    Basic { user: String, password: String },
    Bearer(String),
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Auth::Basic { user, .. } => write!(f, "Basic({user}, <redacted>)"),
            Auth::Bearer(_) => f.write_str("Bearer(<redacted>)"),
        }
    }
}

impl Auth {
    /// Reads `bearer TOKEN` or `basic USER:PASSWORD` (one line; `#` comments and blank lines
    /// around it are ignored).
    pub fn read(path: &Path) -> Result<Auth, TargetError> {
        let shown = path.display().to_string();
        let bad = |reason: String| TargetError::Credentials {
            path: shown.clone(),
            reason,
        };
        let text = std::fs::read_to_string(path)
            .map_err(|e| bad(format!("cannot read the credentials: {e}")))?;
        let line = text
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty() && !l.starts_with('#'))
            .ok_or_else(|| bad("empty: write `bearer TOKEN` or `basic USER:PASSWORD`".into()))?;
        let (scheme, value) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
        let value = value.trim();
        match scheme.to_ascii_lowercase().as_str() {
            "bearer" if !value.is_empty() => Ok(Auth::Bearer(value.to_string())),
            "basic" => match value.split_once(':') {
                Some((user, password)) if !user.is_empty() => Ok(Auth::Basic {
                    user: user.to_string(),
                    password: password.to_string(),
                }),
                _ => Err(bad("`basic` needs USER:PASSWORD".into())),
            },
            _ => Err(bad(
                "not `bearer TOKEN` or `basic USER:PASSWORD` (the first word says which)".into(),
            )),
        }
    }

    /// The `Authorization` header's value.
    fn header(&self) -> String {
        match self {
            Auth::Bearer(token) => format!("Bearer {token}"),
            Auth::Basic { user, password } => {
                format!("Basic {}", base64(format!("{user}:{password}").as_bytes()))
            }
        }
    }
}

/// Standard base64 with padding (for the basic credentials).
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
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
        let after_host = host_and_port
            .rsplit_once(']')
            .map_or(host_and_port, |(_, rest)| rest);
        let port = match after_host.rsplit_once(':') {
            None => {
                if https {
                    443
                } else {
                    80
                }
            }
            Some((_, p)) => match p.parse::<u16>() {
                Ok(p) if p > 0 => p,
                _ => return Err(bad("its port is not a number from 1 to 65535")),
            },
        };
        let mut auth = match userinfo {
            Some(info) => {
                let (user, password) = info.split_once(':').unwrap_or((info, ""));
                Some(Auth::Basic {
                    user: percent_decode(user),
                    password: percent_decode(password),
                })
            }
            None => None,
        };
        if auth_given.is_some() {
            auth = auth_given;
        }
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

    /// POSTs a JSON body to `path` (after the base URL's own path) on a fresh connection; any
    /// status below 300 is success.
    pub async fn post(&self, path: &str, body: Bytes) -> Result<(), PostError> {
        let address = self.address();
        let exchange = async {
            let mut link = self.open().await?;
            let request =
                self.request(path, &[(header::CONTENT_TYPE, "application/json")], body)?;
            link.exchange(self.service, request).await
        };
        within(CONNECT_TIMEOUT + RESPONSE_TIMEOUT, exchange)
            .await
            .unwrap_or(Err(PostError::Timeout {
                service: self.service.name,
                address,
            }))
    }

    fn address(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    /// Opens a connection (TCP, and TLS for https) that [`Link::send`] posts on, again and
    /// again, until the service closes it or an exchange fails.
    pub async fn connect(&self) -> Result<Link, PostError> {
        let address = self.address();
        within(CONNECT_TIMEOUT, self.open())
            .await
            .unwrap_or(Err(PostError::Timeout {
                service: self.service.name,
                address,
            }))
    }

    async fn open(&self) -> Result<Link, PostError> {
        let address = self.address();
        let service = self.service.name;
        let tcp = async_net::TcpStream::connect((self.host.as_str(), self.port))
            .await
            .map_err(|e| PostError::Connect {
                service,
                address: address.clone(),
                reason: e.to_string(),
            })?;
        let _ = tcp.set_nodelay(true);
        match &self.tls {
            None => Link::handshake(tcp, address).await,
            Some(config) => {
                let name =
                    rustls::pki_types::ServerName::try_from(self.host.clone()).map_err(|e| {
                        PostError::Tls {
                            address: address.clone(),
                            reason: format!("{:?} is not a server name: {e}", self.host),
                        }
                    })?;
                let tls = futures_rustls::TlsConnector::from(config.clone())
                    .connect(name, tcp)
                    .await
                    .map_err(|e| PostError::Tls {
                        address: address.clone(),
                        reason: e.to_string(),
                    })?;
                Link::handshake(tls, address).await
            }
        }
    }

    /// A POST of `body` to `path` with the target's credentials and headers and `extra`.
    pub fn request(
        &self,
        path: &str,
        extra: &[(header::HeaderName, &'static str)],
        body: Bytes,
    ) -> Result<Request<Full<Bytes>>, PostError> {
        let mut builder = Request::builder()
            .method(Method::POST)
            .uri(format!("{}{path}", self.prefix))
            .header(header::HOST, self.authority.as_str())
            .header(
                header::USER_AGENT,
                concat!("nms/", env!("CARGO_PKG_VERSION")),
            );
        for (name, value) in extra {
            builder = builder.header(name, *value);
        }
        for (name, value) in &self.headers {
            builder = builder.header(name, value);
        }
        if let Some(auth) = &self.auth {
            builder = builder.header(header::AUTHORIZATION, auth.header());
        }
        builder.body(Full::new(body)).map_err(|e| PostError::Http {
            reason: e.to_string(),
        })
    }
}

/// An open HTTP/1.1 connection to a target: requests go one after the other on it.
pub struct Link {
    sender: hyper::client::conn::http1::SendRequest<Full<Bytes>>,
    address: String,
    _connection: smol::Task<()>,
}

impl Link {
    async fn handshake<S>(stream: S, address: String) -> Result<Link, PostError>
    where
        S: futures_lite::AsyncRead + futures_lite::AsyncWrite + Unpin + Send + 'static,
    {
        let (sender, connection) =
            hyper::client::conn::http1::handshake(smol_hyper::rt::FuturesIo::new(stream))
                .await
                .map_err(|e| PostError::Http {
                    reason: e.to_string(),
                })?;
        let task = smol::spawn(async move {
            let _ = connection.await;
        });
        Ok(Link {
            sender,
            address,
            _connection: task,
        })
    }

    /// Whether the connection can take another request.
    pub fn is_open(&self) -> bool {
        !self.sender.is_closed()
    }

    /// Sends `request` and reads the answer within [`RESPONSE_TIMEOUT`]; a status of 300 or
    /// more is an error carrying it.
    pub async fn send(
        &mut self,
        service: Service,
        request: Request<Full<Bytes>>,
    ) -> Result<(), PostError> {
        let address = self.address.clone();
        within(RESPONSE_TIMEOUT, self.exchange(service, request))
            .await
            .unwrap_or(Err(PostError::Timeout {
                service: service.name,
                address,
            }))
    }

    async fn exchange(
        &mut self,
        service: Service,
        request: Request<Full<Bytes>>,
    ) -> Result<(), PostError> {
        let http = |e: &dyn std::fmt::Display| PostError::Http {
            reason: e.to_string(),
        };
        self.sender.ready().await.map_err(|e| http(&e))?;
        let response = self
            .sender
            .send_request(request)
            .await
            .map_err(|e| http(&e))?;
        let status = response.status().as_u16();
        let body = Limited::new(response.into_body(), MAX_ANSWER)
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        if status >= 300 {
            let text = String::from_utf8_lossy(&body);
            let text = crate::log::escape_controls(text.trim()).into_owned();
            return Err(PostError::Status {
                service: service.name,
                status,
                message: if text.is_empty() {
                    "(no message)".into()
                } else {
                    text.chars().take(300).collect()
                },
            });
        }
        Ok(())
    }
}

/// Why a post failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PostError {
    #[error("cannot connect to {address} ({reason}): is {service} running?")]
    Connect {
        service: &'static str,
        address: String,
        reason: String,
    },
    #[error("{address}: no answer within the time allowed: is {service} running?")]
    Timeout {
        service: &'static str,
        address: String,
    },
    #[error("TLS with {address} failed: {reason}")]
    Tls { address: String, reason: String },
    #[error("the HTTP exchange failed: {reason}")]
    Http { reason: String },
    #[error("{service} answered {status}: {message}")]
    Status {
        service: &'static str,
        status: u16,
        message: String,
    },
}

impl PostError {
    /// Whether a later try may succeed (Alertmanager down, overloaded, restarting); a refusal
    /// of the request itself (400, 401, ...) or a certificate that does not check never will.
    pub fn retryable(&self) -> bool {
        match self {
            PostError::Status { status, .. } => *status >= 500 || *status == 429 || *status == 408,
            PostError::Tls { .. } => false,
            _ => true,
        }
    }
}

/// `work`'s output, or `None` after `limit`.
async fn within<T>(limit: Duration, work: impl Future<Output = T>) -> Option<T> {
    futures_lite::future::or(async { Some(work.await) }, async {
        async_io::Timer::after(limit).await;
        None
    })
    .await
}

/// The certificates an https service is checked against: the system's, and `ca_file`'s.
fn tls_config(ca_file: Option<&Path>) -> Result<rustls::ClientConfig, TargetError> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_native_certs::load_native_certs().certs {
        let _ = roots.add(cert);
    }
    if let Some(path) = ca_file {
        let shown = path.display().to_string();
        let bad = |reason: String| TargetError::Certificates {
            path: shown.clone(),
            reason,
        };
        let mut added = 0;
        let certs = CertificateDer::pem_file_iter(path)
            .map_err(|e| bad(format!("cannot read the CA certificates: {e}")))?;
        for cert in certs {
            let cert = cert.map_err(|e| bad(format!("not PEM certificates: {e}")))?;
            roots
                .add(cert)
                .map_err(|e| bad(format!("a certificate is not usable as a CA: {e}")))?;
            added += 1;
        }
        if added == 0 {
            return Err(bad(
                "no certificate in it (PEM, -----BEGIN CERTIFICATE-----)".into(),
            ));
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TargetError::Certificates {
            path: "TLS".into(),
            reason: e.to_string(),
        })?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(config)
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
