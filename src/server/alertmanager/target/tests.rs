//! Tests for `server/alertmanager/target/`, kept apart so the module itself stays short.

use super::auth::base64;
use super::*;

#[test]
fn base_urls_of_both_schemes_are_accepted_and_bad_ones_refused() {
    let t = Target::new("http://127.0.0.1:9093", None, None).unwrap();
    assert_eq!(
        (t.url(), t.port, t.prefix.as_str()),
        ("http://127.0.0.1:9093", 9093, "")
    );
    let t = Target::new("https://am.example.net/alertmanager/", None, None).unwrap();
    assert_eq!(t.url(), "https://am.example.net/alertmanager");
    assert_eq!((t.port, t.tls.is_some()), (443, true));
    for bad in [
        "127.0.0.1:9093",
        "ftp://am:9093",
        "http://",
        "http://am/?x=1",
        "",
        "http://am:0",
    ] {
        let e = Target::new(bad, None, None).unwrap_err();
        assert!(e.to_string().contains("http://127.0.0.1:9093"), "{e}");
    }
}

#[test]
fn credentials_in_the_url_become_basic_auth_and_are_never_shown() {
    let t = Target::new("http://nms:s%40cret@am:9093", None, None).unwrap();
    assert_eq!(t.url(), "http://am:9093");
    assert_eq!(
        t.auth,
        Some(Auth::Basic {
            user: "nms".into(),
            password: "s@cret".into()
        })
    );
    assert!(!format!("{t:?}").contains("cret"));
    let e = Target::new("http://nms:secret@am:0", None, None).unwrap_err();
    assert!(!e.to_string().contains("secret"), "{e}");
    assert_eq!(
        without_credentials("https://u:p@h:1/x"),
        "https://h:1/x".to_string()
    );
}

#[test]
fn a_credentials_file_says_bearer_or_basic() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("am-auth");
    std::fs::write(&file, "# for the proxy\nbearer abc.def\n").unwrap();
    assert_eq!(Auth::read(&file).unwrap(), Auth::Bearer("abc.def".into()));
    std::fs::write(&file, "basic nms:pa ss\n").unwrap();
    let basic = Auth::read(&file).unwrap();
    assert_eq!(basic.header(), format!("Basic {}", base64(b"nms:pa ss")));
    std::fs::write(&file, "token abc\n").unwrap();
    let e = Auth::read(&file).unwrap_err().to_string();
    assert!(e.contains("bearer TOKEN"), "{e}");
    assert!(!e.contains("abc"), "{e}");
}

#[test]
fn base64_pads_as_the_standard_says() {
    assert_eq!(base64(b""), "");
    assert_eq!(base64(b"f"), "Zg==");
    assert_eq!(base64(b"fo"), "Zm8=");
    assert_eq!(base64(b"foo"), "Zm9v");
    assert_eq!(
        base64(b"Aladdin:open sesame"),
        "QWxhZGRpbjpvcGVuIHNlc2FtZQ=="
    );
}

#[test]
fn a_bad_ca_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("ca.pem");
    std::fs::write(&file, "not a certificate").unwrap();
    let e = Target::new("https://am:9093", None, Some(&file)).unwrap_err();
    assert!(e.to_string().contains("ca.pem"), "{e}");
}
