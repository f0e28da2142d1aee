//! The LDAP client against a real OpenLDAP slapd.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fmt::Write as _;
use std::time::Duration;

use scimbridge_ldap::{Bind, ClientSettings, LdapClient, LdapError};
use scimbridge_testkit::free_port;
use scimbridge_testkit::slapd::{SYNC_DN, SYNC_PASSWORD, Slapd, SlapdOptions};
use scimbridge_testkit::tls::TestPki;

fn settings(urls: Vec<String>) -> ClientSettings {
    ClientSettings {
        urls,
        start_tls: false,
        ca_certificate_pem: None,
        client_certificate_pem: None,
        client_key_pem: None,
        bind: Bind::Simple {
            dn: SYNC_DN.into(),
            password: SYNC_PASSWORD.into(),
        },
        connect_timeout: Duration::from_secs(5),
        operation_timeout: Duration::from_secs(30),
        page_size: 100,
    }
}

fn users(count: usize) -> String {
    let mut ldif = String::new();
    for i in 0..count {
        write!(
            ldif,
            "dn: uid=user{i:04},ou=people,dc=example,dc=com\nobjectClass: inetOrgPerson\n\
             uid: user{i:04}\ncn: User {i}\nsn: {i}\n\n"
        )
        .unwrap();
    }
    ldif
}

async fn uids(client: &mut LdapClient) -> Vec<String> {
    let mut found = Vec::new();
    client
        .search_subtree(
            "ou=people,dc=example,dc=com",
            "(objectClass=inetOrgPerson)",
            &["uid", "entryUUID"],
            |record| found.push(record.first_text("uid").unwrap().to_owned()),
        )
        .await
        .unwrap();
    found.sort();
    found
}

#[tokio::test]
async fn pages_through_more_entries_than_the_size_limit() {
    let dir = tempfile::tempdir().unwrap();
    let slapd = Slapd::start(dir.path());
    slapd.add(&users(650));
    let mut client = LdapClient::connect(&settings(vec![slapd.url.clone()]))
        .await
        .unwrap();
    let found = uids(&mut client).await;
    // 650 is above slapd's default size limit of 500: paging (and the account's limit) matter.
    assert_eq!(found.len(), 650);
    assert_eq!(found[0], "user0000");
    let dse = client.root_dse().await.unwrap();
    assert!(dse.supports_sync());
    assert!(dse.naming_contexts.iter().any(|c| c == "dc=example,dc=com"));
}

/// A paged search read page by page: the server's pages of `page_size` entries, one per call,
/// until there are no more.
#[tokio::test]
async fn a_paged_search_is_read_a_page_at_a_time() {
    let dir = tempfile::tempdir().unwrap();
    let slapd = Slapd::start(dir.path());
    slapd.add(&users(650));
    let mut client = LdapClient::connect(&settings(vec![slapd.url.clone()]))
        .await
        .unwrap();
    let mut search = LdapClient::paged_search(
        "ou=people,dc=example,dc=com",
        "(objectClass=inetOrgPerson)",
        &["uid"],
    );
    let mut sizes = Vec::new();
    let mut found = Vec::new();
    while let Some(page) = client.next_page(&mut search).await.unwrap() {
        sizes.push(page.len());
        found.extend(page.iter().map(|r| r.first_text("uid").unwrap().to_owned()));
    }
    assert_eq!(sizes, [100, 100, 100, 100, 100, 100, 50]);
    found.sort();
    found.dedup();
    assert_eq!(found.len(), 650);
    assert!(client.next_page(&mut search).await.unwrap().is_none());
}

#[tokio::test]
async fn tries_hosts_in_order_and_says_why_each_failed() {
    let dir = tempfile::tempdir().unwrap();
    let slapd = Slapd::start(dir.path());
    let dead = format!("ldap://127.0.0.1:{}", free_port());
    let mut client = LdapClient::connect(&settings(vec![dead.clone(), slapd.url.clone()]))
        .await
        .unwrap();
    assert_eq!(client.url(), slapd.url);
    assert!(uids(&mut client).await.is_empty());

    let err = LdapClient::connect(&settings(vec![dead.clone()]))
        .await
        .err()
        .unwrap();
    let text = err.to_string();
    assert!(matches!(err, LdapError::Unreachable(_)), "{text}");
    assert!(
        text.contains(&dead) && text.contains("connection refused"),
        "{text}"
    );
}

#[tokio::test]
async fn a_wrong_password_and_a_missing_base_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let slapd = Slapd::start(dir.path());
    let mut wrong = settings(vec![slapd.url.clone()]);
    wrong.bind = Bind::Simple {
        dn: SYNC_DN.into(),
        password: "nope".into(),
    };
    let err = LdapClient::connect(&wrong).await.err().unwrap().to_string();
    assert!(
        err.contains("invalid credentials") && err.contains(SYNC_DN),
        "{err}"
    );

    let mut client = LdapClient::connect(&settings(vec![slapd.url.clone()]))
        .await
        .unwrap();
    let err = client
        .search_subtree(
            "ou=nobody,dc=example,dc=com",
            "(objectClass=*)",
            &["1.1"],
            |_| {},
        )
        .await
        .unwrap_err();
    assert!(matches!(err, LdapError::NoSuchObject { .. }), "{err}");
    assert!(err.to_string().contains("ou=nobody,dc=example,dc=com"));
}

#[tokio::test]
async fn content_synchronization_reports_changes_and_deletes_after_the_cookie() {
    let dir = tempfile::tempdir().unwrap();
    let slapd = Slapd::start(dir.path());
    slapd.add(&users(5));
    let mut client = LdapClient::connect(&settings(vec![slapd.url.clone()]))
        .await
        .unwrap();
    let base = "ou=people,dc=example,dc=com";
    let filter = "(objectClass=inetOrgPerson)";
    let attrs = ["*", "entryUUID"];
    let first = client
        .sync_refresh(base, filter, &attrs, None)
        .await
        .unwrap();
    assert_eq!(first.changed.len(), 5);
    assert!(first.cookie.is_some());
    let uuid_of = |uid: &str| {
        first
            .changed
            .iter()
            .find(|r| r.first_text("uid") == Some(uid))
            .and_then(|r| r.first_text("entryUUID"))
            .unwrap()
            .to_owned()
    };

    let again = client
        .sync_refresh(base, filter, &attrs, first.cookie.clone())
        .await
        .unwrap();
    assert!(
        again.changed.is_empty() && again.deleted.is_empty(),
        "{again:?}"
    );

    slapd.modify(
        "dn: uid=user0001,ou=people,dc=example,dc=com\nchangetype: modify\nreplace: cn\ncn: Renamed\n\n\
         dn: uid=user0002,ou=people,dc=example,dc=com\nchangetype: delete\n",
    );
    let changes = client
        .sync_refresh(base, filter, &attrs, again.cookie.clone())
        .await
        .unwrap();
    let changed: Vec<_> = changes
        .changed
        .iter()
        .map(|r| r.first_text("cn").unwrap())
        .collect();
    assert_eq!(changed, ["Renamed"]);
    assert_eq!(changes.deleted, [uuid_of("user0002")]);
}

/// The cookie of a refresh that keeps no entry is where content synchronization goes on
/// from: the next refresh sends only what changed after it.
#[tokio::test]
async fn a_cookie_alone_starts_content_synchronization() {
    let dir = tempfile::tempdir().unwrap();
    let slapd = Slapd::start(dir.path());
    slapd.add(&users(5));
    let mut client = LdapClient::connect(&settings(vec![slapd.url.clone()]))
        .await
        .unwrap();
    let base = "ou=people,dc=example,dc=com";
    let filter = "(objectClass=inetOrgPerson)";
    let cookie = client.sync_cookie(base, filter).await.unwrap();
    assert!(cookie.is_some());
    slapd.modify(
        "dn: uid=user0001,ou=people,dc=example,dc=com\nchangetype: modify\nreplace: cn\ncn: Renamed\n\n\
         dn: uid=user0002,ou=people,dc=example,dc=com\nchangetype: delete\n",
    );
    let changes = client
        .sync_refresh(base, filter, &["cn", "entryUUID"], cookie)
        .await
        .unwrap();
    let changed: Vec<_> = changes
        .changed
        .iter()
        .map(|r| r.first_text("cn").unwrap())
        .collect();
    assert_eq!(changed, ["Renamed"]);
    assert_eq!(changes.deleted.len(), 1, "{changes:?}");
}

#[tokio::test]
async fn tls_start_tls_and_sasl_external() {
    let dir = tempfile::tempdir().unwrap();
    let pki = TestPki::generate(dir.path());
    let slapd = Slapd::start_with(
        dir.path(),
        SlapdOptions {
            tls: Some(&pki),
            ..SlapdOptions::default()
        },
    );
    slapd.add(&users(2));
    let ca = std::fs::read(&pki.ca_certificate).unwrap();

    // ldaps:// with the test CA.
    let mut ldaps = settings(vec![slapd.ldaps_url.clone().unwrap()]);
    ldaps.ca_certificate_pem = Some(ca.clone());
    let mut client = LdapClient::connect(&ldaps).await.unwrap();
    assert_eq!(uids(&mut client).await.len(), 2);

    // Without the CA the server is not trusted.
    let untrusted = settings(vec![slapd.ldaps_url.clone().unwrap()]);
    let err = LdapClient::connect(&untrusted)
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(err.to_lowercase().contains("certificate"), "{err}");

    // StartTLS on the plain port.
    let mut start_tls = settings(vec![slapd.url.clone()]);
    start_tls.start_tls = true;
    start_tls.ca_certificate_pem = Some(ca.clone());
    let mut client = LdapClient::connect(&start_tls).await.unwrap();
    assert_eq!(uids(&mut client).await.len(), 2);

    // SASL EXTERNAL: the client certificate is the identity (mapped to the sync account).
    let mut external = ldaps.clone();
    external.bind = Bind::SaslExternal;
    external.client_certificate_pem = Some(std::fs::read(&pki.client_certificate).unwrap());
    external.client_key_pem = Some(std::fs::read(&pki.client_key).unwrap());
    let mut client = LdapClient::connect(&external).await.unwrap();
    assert_eq!(uids(&mut client).await.len(), 2);
}

#[tokio::test]
async fn a_server_that_accepts_but_never_answers_times_out() {
    // No real server stalls on demand: a listener that accepts and stays silent stands in.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("ldap://{}", listener.local_addr().unwrap());
    let held = std::thread::spawn(move || {
        let connection = listener.accept().map(|(stream, _)| stream);
        std::thread::sleep(Duration::from_secs(5));
        drop(connection);
    });
    let mut stalled = settings(vec![url.clone()]);
    stalled.operation_timeout = Duration::from_secs(1);
    let started = std::time::Instant::now();
    let err = LdapClient::connect(&stalled)
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    assert!(
        err.contains(&url) && err.contains("did not answer in time"),
        "{err}"
    );
    held.join().unwrap();
}

const NAMING_CONTEXT: &str = "dc=example,dc=com";

fn retitle(uid: &str, title: &str) -> String {
    format!(
        "dn: uid={uid},ou=people,dc=example,dc=com\nchangetype: modify\nreplace: title\ntitle: {title}\n"
    )
}

/// The live feed starts from "now" (a cookie of the base entry): its refresh lists nothing,
/// and each later change is reported.
#[tokio::test]
async fn a_change_feed_starts_from_now_and_reports_each_change() {
    let dir = tempfile::tempdir().unwrap();
    let slapd = Slapd::start(dir.path());
    slapd.add(&users(300));
    let client = LdapClient::connect(&settings(vec![slapd.url.clone()]))
        .await
        .unwrap();
    let mut feed = client.watch(NAMING_CONTEXT).await.unwrap();
    assert!(feed.started_from_cookie());
    let quiet = tokio::time::timeout(Duration::from_millis(500), feed.next_change()).await;
    assert!(
        quiet.is_err(),
        "a change was reported before any: {quiet:?}"
    );

    for title in ["First", "Second"] {
        slapd.modify(&retitle("user0007", title));
        let change = tokio::time::timeout(Duration::from_secs(10), feed.next_change()).await;
        assert!(matches!(change, Ok(Ok(true))), "{change:?}");
    }
}

/// A cookie the server refuses (here one from its future, as after a restore from backup)
/// does not end the feed: it starts again without one, says so as a change (what changed since
/// the cookie is in no feed), and reports changes as before.
#[tokio::test]
async fn a_change_feed_whose_cookie_is_refused_starts_without_one() {
    let dir = tempfile::tempdir().unwrap();
    let slapd = Slapd::start(dir.path());
    slapd.add(&users(30));
    let client = LdapClient::connect(&settings(vec![slapd.url.clone()]))
        .await
        .unwrap();
    let future = b"rid=000,csn=20991231000000.000000Z#000000#000#000000".to_vec();
    let mut feed = client
        .watch_from(NAMING_CONTEXT, Some(future))
        .await
        .unwrap();
    assert!(feed.started_from_cookie());
    let restarted = tokio::time::timeout(Duration::from_secs(10), feed.next_change()).await;
    assert!(matches!(restarted, Ok(Ok(true))), "{restarted:?}");
    assert!(!feed.started_from_cookie());
    // The new feed's refresh lists every entry: none of them is a change.
    let quiet = tokio::time::timeout(Duration::from_secs(1), feed.next_change()).await;
    assert!(quiet.is_err(), "{quiet:?}");

    slapd.modify(&retitle("user0003", "After"));
    let change = tokio::time::timeout(Duration::from_secs(10), feed.next_change()).await;
    assert!(matches!(change, Ok(Ok(true))), "{change:?}");
}
