//! The shared HTTP client's safety properties, against real sockets on loopback: redirects are
//! never followed (a signed request must not be carried elsewhere), names that resolve to
//! loopback are refused unless loopback is explicitly allowed (DNS rebinding), bodies are capped,
//! and a custom CA bundle is loaded or refused with a clear error.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::any;
use cloudquota::crd::{Provider, Service};
use cloudquota::providers::http::{HttpClient, HttpConfig, RetryPolicy};
use cloudquota::providers::{Credentials, ProviderError, Providers, Target};
use cloudquota::sign::SecretString;

async fn serve(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

fn creds() -> Credentials {
    Credentials::AccessKey {
        access_key_id: "AKID".into(),
        secret_access_key: SecretString::from("sk-value-1234"),
        security_token: None,
    }
}

fn target(endpoint: &str) -> Target {
    Target {
        provider: Provider::Huaweicloud,
        service: Service::Dws,
        endpoint: url::Url::parse(endpoint).unwrap(),
        project_id: Some("p".into()),
        zones: vec![],
    }
}

fn client(allow_loopback: bool, max_body: usize) -> HttpClient {
    HttpClient::new(&HttpConfig {
        allow_loopback,
        max_body,
        retry: RetryPolicy::none(),
        ..HttpConfig::default()
    })
    .unwrap()
}

#[tokio::test]
async fn redirects_are_not_followed() {
    let stolen = Arc::new(AtomicUsize::new(0));
    let s = stolen.clone();
    let thief = serve(Router::new().fallback(any(move || {
        s.fetch_add(1, Ordering::SeqCst);
        async { "{}" }
    })))
    .await;
    let location = format!("{thief}/steal");
    let redirector = serve(Router::new().fallback(any(move || {
        let location = location.clone();
        async move { (StatusCode::FOUND, [(header::LOCATION, location)], "").into_response() }
    })))
    .await;
    let err = Providers::default()
        .fetch(&client(true, 1 << 20), &target(&redirector), &creds())
        .await
        .unwrap_err();
    assert!(
        matches!(err, ProviderError::Rejected { status: 302, .. }),
        "{err:?}"
    );
    assert_eq!(
        stolen.load(Ordering::SeqCst),
        0,
        "the redirect target must see nothing"
    );
}

#[tokio::test]
async fn names_resolving_to_loopback_are_refused_without_the_flag() {
    let hits = Arc::new(AtomicUsize::new(0));
    let h = hits.clone();
    let server = serve(Router::new().fallback(any(move || {
        h.fetch_add(1, Ordering::SeqCst);
        async { "{}" }
    })))
    .await;
    let port = server.rsplit(':').next().unwrap();
    let err = Providers::default()
        .fetch(
            &client(false, 1 << 20),
            &target(&format!("http://localhost:{port}")),
            &creds(),
        )
        .await
        .unwrap_err();
    assert_eq!(err.reason(), "EndpointUnreachable", "{err}");
    assert!(err.to_string().contains("no allowed address"), "{err}");
    assert_eq!(hits.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn bodies_are_capped_even_without_content_length() {
    let server = serve(Router::new().fallback(any(|| async {
        let chunks = futures::stream::iter(
            (0..64).map(|_| Ok::<_, std::io::Error>(bytes::Bytes::from(vec![b' '; 1024]))),
        );
        axum::body::Body::from_stream(chunks)
    })))
    .await;
    let err = Providers::default()
        .fetch(&client(true, 16 * 1024), &target(&server), &creds())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("exceeds 16384 bytes"), "{err}");
}

#[test]
fn ca_bundle_is_loaded_or_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let (key, cert) = (dir.path().join("k.pem"), dir.path().join("c.pem"));
    let ok = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=private-cloud-ca",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl");
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let config = |p: std::path::PathBuf| HttpConfig {
        ca_bundle: Some(p),
        ..HttpConfig::default()
    };
    HttpClient::new(&config(cert)).expect("a PEM CA bundle loads");
    let missing = HttpClient::new(&config(dir.path().join("nope.pem"))).unwrap_err();
    assert!(
        missing.to_string().contains("CA bundle") && missing.to_string().contains("nope.pem"),
        "{missing}"
    );
    std::fs::write(
        dir.path().join("bad.pem"),
        "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    assert!(HttpClient::new(&config(dir.path().join("bad.pem"))).is_err());
}
