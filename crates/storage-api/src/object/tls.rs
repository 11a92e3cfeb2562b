//! TLS of the S3 backend: verified by default against the system's roots;
//! [`S3Config::ca_file`] adds CA certificates to trust (checked when
//! connecting, so a bad file is `Invalid` then, not a panic later);
//! [`S3Config::danger_accept_invalid_certs`] switches verification off,
//! logged as a warning. A certificate the handshake rejects is never
//! retried: another attempt cannot fix it.

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_s3::config::SharedHttpClient;
use aws_sdk_s3::config::http::{HttpRequest, HttpResponse};
use aws_smithy_http_client::tls::{self, TlsContext, TrustStore, rustls_provider::CryptoMode};
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::interceptors::context::InterceptorContext;
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::retries::classifiers::{
    ClassifyRetry, RetryAction, RetryClassifierPriority,
};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::body::SdkBody;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

use crate::config::S3Config;
use crate::error::{Error, Result};

/// The HTTP client a config asks for; `None` for the SDK's default (system
/// roots, verified).
pub(crate) fn http_client(config: &S3Config, backend: &str) -> Result<Option<SharedHttpClient>> {
    let endpoint = config
        .endpoint
        .as_deref()
        .map_or_else(|| "AWS".to_owned(), crate::secret::redact_url);
    if config.danger_accept_invalid_certs {
        tracing::warn!(
            backend,
            endpoint = %endpoint,
            "TLS certificate verification is OFF (danger_accept_invalid_certs): any server \
             can pose as this endpoint and read the credentials and data sent to it"
        );
        return Ok(Some(SharedHttpClient::new(Unverified::new(config)?)));
    }
    let Some(path) = &config.ca_file else {
        return Ok(None);
    };
    let pem = std::fs::read(path)
        .map_err(|e| Error::io(format!("reading ca_file {}", path.display()), e))?;
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&pem)
        .collect::<std::result::Result<_, _>>()
        .map_err(|e| Error::Invalid(format!("ca_file {}: not PEM: {e}", path.display())))?;
    if certs.is_empty() {
        return Err(Error::Invalid(format!(
            "ca_file {}: no certificate in it",
            path.display()
        )));
    }
    let mut roots = rustls::RootCertStore::empty();
    for cert in certs {
        roots.add(cert).map_err(|e| {
            Error::Invalid(format!(
                "ca_file {}: not a usable CA certificate: {e}",
                path.display()
            ))
        })?;
    }
    let context = TlsContext::builder()
        .with_trust_store(TrustStore::default().with_pem_certificate(pem))
        .build()
        .map_err(|e| Error::Invalid(format!("ca_file {}: {e}", path.display())))?;
    Ok(Some(
        aws_smithy_http_client::Builder::new()
            .tls_provider(tls::Provider::Rustls(CryptoMode::AwsLc))
            .tls_context(context)
            .build_https(),
    ))
}

/// Whether an error, or one of its sources, is the TLS handshake refusing
/// the server's certificate (rustls: "invalid peer certificate:
/// UnknownIssuer", "…: NotValidForName", an expired certificate…).
pub(crate) fn is_certificate_failure(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = cur {
        if s.downcast_ref::<rustls::Error>()
            .is_some_and(|r| matches!(r, rustls::Error::InvalidCertificate(_)))
            || s.to_string().contains("invalid peer certificate")
        {
            return true;
        }
        cur = s.source();
    }
    false
}

/// Refuses retries of a request whose connection failed on the server's
/// certificate.
#[derive(Debug)]
pub(crate) struct NoRetryOnCertificate;

impl ClassifyRetry for NoRetryOnCertificate {
    fn classify_retry(&self, ctx: &InterceptorContext) -> RetryAction {
        match ctx.output_or_error() {
            Some(Err(e)) => match e.as_connector_error() {
                Some(c) if is_certificate_failure(c) => RetryAction::RetryForbidden,
                _ => RetryAction::NoActionIndicated,
            },
            _ => RetryAction::NoActionIndicated,
        }
    }

    fn name(&self) -> &'static str {
        "kubepkg: no retry on a rejected certificate"
    }

    fn priority(&self) -> RetryClassifierPriority {
        // After the SDK's own transient-error classifier, so its verdict
        // is overridden.
        RetryClassifierPriority::run_after(RetryClassifierPriority::transient_error_classifier())
    }
}

/// Accepts any certificate; still checks the handshake signatures.
#[derive(Debug)]
struct AcceptAny(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAny {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

type Https = hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>;

/// The HTTP client of `danger_accept_invalid_certs`: hyper with a rustls
/// config that accepts any certificate, the connect timeout of the config
/// and the read timeout the SDK asks for (until the answer starts; the
/// backend bounds the wait within a body itself).
#[derive(Debug, Clone)]
struct Unverified {
    client: hyper_util::client::legacy::Client<Https, SdkBody>,
}

impl Unverified {
    fn new(config: &S3Config) -> Result<Self> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::Internal(format!("TLS setup: {e}")))?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAny(provider)))
            .with_no_client_auth();
        let mut http = hyper_util::client::legacy::connect::HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(Duration::from_secs(
            config.connect_timeout_secs.clamp(1, 3600),
        )));
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let client =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build(https);
        Ok(Unverified { client })
    }
}

impl HttpClient for Unverified {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        _components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(UnverifiedConnector {
            client: self.client.clone(),
            read_timeout: settings.read_timeout(),
        })
    }
}

#[derive(Debug)]
struct UnverifiedConnector {
    client: hyper_util::client::legacy::Client<Https, SdkBody>,
    read_timeout: Option<Duration>,
}

impl HttpConnector for UnverifiedConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let client = self.client.clone();
        let read_timeout = self.read_timeout;
        HttpConnectorFuture::new(async move {
            let request = request
                .try_into_http1x()
                .map_err(|e| ConnectorError::user(e.into()))?;
            let sent = client.request(request);
            let answer = match read_timeout {
                Some(d) => tokio::time::timeout(d, sent).await.map_err(|_| {
                    ConnectorError::timeout(format!("no answer within {d:?}").into())
                })?,
                None => sent.await,
            };
            let answer = answer.map_err(|e| {
                if e.is_connect() {
                    ConnectorError::io(e.into())
                } else {
                    ConnectorError::other(e.into(), None)
                }
            })?;
            HttpResponse::try_from(answer.map(SdkBody::from_body_1_x))
                .map_err(|e| ConnectorError::other(e.into(), None))
        })
    }
}
