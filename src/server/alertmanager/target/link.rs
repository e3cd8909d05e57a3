//! Talking to a target: a POST on a fresh connection ([`Target::post`]), or many on one
//! kept-alive HTTP/1.1 [`Link`] (TCP, and TLS by rustls for https, checked against the
//! certificates [`tls_config`] gathers), each within its time limit; and why a post failed
//! ([`PostError`]).

use super::{CONNECT_TIMEOUT, RESPONSE_TIMEOUT, Service, Target, TargetError};
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::{Method, Request, header};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// Most bytes of an answer read (Alertmanager answers with little or nothing).
const MAX_ANSWER: usize = 64 * 1024;

impl Target {
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
pub(super) fn tls_config(ca_file: Option<&Path>) -> Result<rustls::ClientConfig, TargetError> {
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
