//! The web console in a real browser (headless Chromium driven over WebDriver by chromedriver,
//! both from Debian; scripts/test installs them): sign on, create a connection through every step
//! of the seed's "Create Connection" flow against the bundled target and an LDIF data store, see
//! a wrong token refused at activation, go back and fix it, activate, Save, and watch the users
//! arrive on the dashboard; then a wrong OAuth 2 client secret refused at activation. A screenshot of each step is kept in
//! `target/tmp/console-screenshots/`. Without a browser: every form needs the session's CSRF
//! token, every page a session, and a connection that is not there is 404.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use common::*;
use scimbridge_testkit::oauth::{BASIC_CLIENT, Canaille, IntrospectedScimServer};
use serde_json::{Value, json};

const SECRET: &str = "T0ken-for-the-browser-test";
const PASSWORD: &str = "correct horse battery staple";
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

struct Browser {
    driver: Child,
    url: String,
    session: String,
    shots: PathBuf,
    taken: usize,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = reqwest::blocking::Client::new()
            .delete(format!("{}/session/{}", self.url, self.session))
            .send();
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

impl Browser {
    fn start() -> Browser {
        let port = scimbridge_testkit::free_port();
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start chromedriver (scripts/test installs it): {e}")
            });
        wait_for_port(port);
        let url = format!("http://127.0.0.1:{port}");
        let answer: Value = reqwest::blocking::Client::new()
            .post(format!("{url}/session"))
            .json(&json!({"capabilities": {"alwaysMatch": {
                "browserName": "chrome",
                "goog:chromeOptions": {
                    "binary": "/usr/bin/chromium",
                    "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                             "--disable-dev-shm-usage", "--window-size=1280,1800"]
                }
            }}}))
            .timeout(Duration::from_secs(60))
            .send()
            .unwrap()
            .json()
            .unwrap();
        let session = answer["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no browser session: {answer}"))
            .to_owned();
        let shots = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("console-screenshots");
        let _ = std::fs::remove_dir_all(&shots);
        std::fs::create_dir_all(&shots).unwrap();
        Browser {
            driver,
            url,
            session,
            shots,
            taken: 0,
        }
    }

    fn command(&self, method: &str, path: &str, body: Value) -> Value {
        let client = reqwest::blocking::Client::new();
        let url = format!("{}/session/{}{path}", self.url, self.session);
        let request = match method {
            "GET" => client.get(url),
            _ => client.post(url).json(&body),
        };
        let answer: Value = request
            .timeout(Duration::from_secs(60))
            .send()
            .unwrap()
            .json()
            .unwrap();
        answer["value"].clone()
    }

    fn goto(&self, url: &str) {
        self.command("POST", "/url", json!({ "url": url }));
    }

    fn current_url(&self) -> String {
        self.command("GET", "/url", Value::Null)
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// The element matching `css`, waiting up to 10 s for it to appear.
    fn find(&self, css: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let found = self.command(
                "POST",
                "/element",
                json!({"using": "css selector", "value": css}),
            );
            if let Some(id) = found[ELEMENT].as_str() {
                return id.to_owned();
            }
            assert!(Instant::now() < deadline, "no element {css}: {found}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn exists(&self, css: &str) -> bool {
        let found = self.command(
            "POST",
            "/elements",
            json!({"using": "css selector", "value": css}),
        );
        found.as_array().is_some_and(|a| !a.is_empty())
    }

    fn click(&self, css: &str) {
        let id = self.find(css);
        self.command("POST", &format!("/element/{id}/click"), json!({}));
    }

    fn fill(&self, css: &str, text: &str) {
        let id = self.find(css);
        self.command("POST", &format!("/element/{id}/clear"), json!({}));
        self.command(
            "POST",
            &format!("/element/{id}/value"),
            json!({ "text": text }),
        );
    }

    /// What the browser says of the element matching `css` (`text`, `property/value`…).
    fn read(&self, css: &str, what: &str) -> Value {
        let id = self.find(css);
        self.command("GET", &format!("/element/{id}/{what}"), Value::Null)
    }

    fn text(&self, css: &str) -> String {
        let text = self.read(css, "text");
        text.as_str().unwrap_or_default().to_owned()
    }

    fn value(&self, css: &str) -> String {
        let value = self.read(css, "property/value");
        value.as_str().unwrap_or_default().to_owned()
    }

    fn displayed(&self, css: &str) -> bool {
        self.read(css, "displayed").as_bool().unwrap_or(false)
    }

    fn checked(&self, css: &str) -> bool {
        self.read(css, "property/checked")
            .as_bool()
            .unwrap_or(false)
    }

    fn page(&self) -> String {
        self.text("body")
    }

    fn screenshot(&mut self, name: &str) {
        let data = self.command("GET", "/screenshot", Value::Null);
        let png = base64::engine::general_purpose::STANDARD
            .decode(data.as_str().unwrap())
            .unwrap();
        self.taken += 1;
        std::fs::write(
            self.shots.join(format!("{:02}-{name}.png", self.taken)),
            png,
        )
        .unwrap();
    }

    /// Back, once the previous step has loaded: a click on a page still loading is lost.
    fn back(&self) {
        let before = self.text("#step-title");
        self.click("#back");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let title = self.text("#step-title");
            // Empty: read from a page on its way out.
            if (title != before && !title.is_empty()) || Instant::now() > deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Next, and the title of the step it leads to.
    fn next(&self) -> String {
        self.click("#next");
        // The click may return while the next page loads: read once it has a title.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let title = self.text("#step-title");
            if !title.is_empty() || Instant::now() > deadline {
                return title;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

#[test]
fn an_administrator_creates_and_activates_a_connection_in_the_browser() {
    let ws = Workspace::new();
    let mut entries: Vec<Entry> = ["ann", "bob", "cara"]
        .iter()
        .enumerate()
        .map(|(i, uid)| Entry::person(uid).with("sn", &format!("S{i}")).guid(i))
        .collect();
    entries.push(Entry::ou("groups"));
    entries.push(
        Entry::group("engineering")
            .group_guid(1)
            .members(&["ann", "bob"]),
    );
    ws.write_ldif(&ldif(entries));
    let target = ws.target(SECRET);
    // Nothing configured: the data store too is made in the console.
    ws.admin_password(PASSWORD);
    let service = Service::start(&ws.data);

    let mut browser = Browser::start();
    signs_on(&mut browser, &service.console());
    walks_every_step_of_create_connection(&mut browser, &target, &ws);
    a_wrong_token_is_refused_at_activation(&mut browser, &target);
    goes_back_fixes_the_token_and_saves(&mut browser, &target);
    the_users_arrive_on_the_dashboard(&mut browser, &target);
    edits_the_stored_connection(&mut browser, &ws);

    // One user's history, from the dashboard's search.
    browser.fill("#who", "ann");
    browser.click("#search");
    assert!(browser.text("#history").contains("user-create"));
    browser.screenshot("user-history");

    // The list shows it active; the secret never reaches a page.
    browser.click("header nav a");
    assert!(browser.text("#connections").contains("Active"));
    let health = browser.text("#connections tr[data-connection=App] .health");
    assert!(
        health.starts_with("OK") && health.contains("last cycle 20"),
        "{health}"
    );
    assert!(!browser.page().contains(SECRET));
    browser.screenshot("sp-connections-active");

    a_wrong_client_secret_is_refused_at_activation(&mut browser);
    assert!(browser.taken >= 18);
}

/// Signed off, every page leads to the sign-on page; a wrong password is refused.
fn signs_on(browser: &mut Browser, console: &str) {
    browser.goto(&format!("{console}/connections"));
    assert!(browser.current_url().ends_with("/console/login"));
    assert!(
        !browser.exists("nav.crumbs"),
        "no breadcrumbs before sign-on"
    );
    assert!(
        !browser.exists("#no-administrator"),
        "an administrator is set"
    );
    browser.fill("#password", "guess");
    browser.click("#sign-on");
    assert!(
        browser
            .text("#login-error")
            .contains("Wrong user name or password")
    );
    browser.screenshot("sign-on-refused");
    browser.fill("#password", PASSWORD);
    browser.click("#sign-on");
    assert!(browser.page().contains("SP Connections"));
    browser.screenshot("sp-connections");
}

/// Create Connection: each step of the seed, in order, what is required refused until given;
/// the target's test refuses a wrong token.
fn walks_every_step_of_create_connection(
    browser: &mut Browser,
    target: &TargetProcess,
    ws: &Workspace,
) {
    browser.click("#create-connection");
    assert_eq!(browser.text("#step-title"), "Connection Template");
    // The only template and type are chosen already; unticked, the template is asked for.
    assert!(browser.checked("#use_template"));
    browser.click("#use_template");
    assert_eq!(
        browser.next(),
        "Connection Template",
        "the template is required"
    );
    assert!(
        browser
            .page()
            .contains("Use the SCIM Provisioner template.")
    );
    browser.click("#use_template");
    browser.screenshot("connection-template");
    assert_eq!(browser.next(), "Connection Type");
    assert!(browser.checked("#outbound"));
    browser.screenshot("connection-type");
    assert_eq!(browser.next(), "General Info");
    browser.fill("#name", "App");
    browser.screenshot("general-info");
    assert_eq!(browser.next(), "Outbound Provisioning: Target");
    browser.fill("#scim_url", &target.url);
    // Only the chosen method's fields show.
    assert!(!browser.displayed("#client_secret"));
    assert!(!browser.displayed("#basic_password"));
    browser.fill("#access_token", "wrong-token");
    browser.click("#test-connection");
    assert!(
        browser
            .text("#test-result")
            .contains("refused the credentials"),
        "{}",
        browser.page()
    );
    browser.screenshot("target-test-refused");
    assert_eq!(browser.next(), "Provisioning Options");
    assert!(browser.checked("#user_create"));
    browser.screenshot("provisioning-options");
    assert_eq!(browser.next(), "Manage Channels: Channel Info");
    browser.fill("#channel_name", "staff");
    browser.fill("#max_threads", "2");
    browser.screenshot("channel-info");
    assert_eq!(browser.next(), "Source");
    assert_eq!(browser.next(), "Source", "the data store is required");
    creates_a_data_store_from_the_source_step(browser, ws);
    assert_eq!(browser.text("#step-title"), "Source");
    assert_eq!(
        browser.value("#data_store"),
        "corp",
        "the new one is chosen"
    );
    assert!(browser.text("#flash").contains("Data store corp saved."));
    browser.screenshot("source");
    assert_eq!(browser.next(), "Source Settings");
    browser.click("#changed_users_algorithm option[value=full-scan]");
    browser.screenshot("source-settings");
    assert_eq!(browser.next(), "Source Location");
    browser.fill("#base_dn", PEOPLE);
    // Groups are among the other settings of the step.
    browser.click("#more-settings summary");
    browser.fill("#source_location__group_base_dn", GROUPS);
    browser.screenshot("source-location");
    assert_eq!(browser.next(), "Attribute Mapping");
    // Filled from the directory type's usual attributes; userName stays required.
    assert_eq!(browser.value("#map_userName"), "uid");
    assert_eq!(browser.value("#map_externalId"), "entryUUID");
    browser.fill("#map_userName", "");
    assert_eq!(browser.next(), "Attribute Mapping", "userName is required");
    assert!(browser.page().contains("userName is required"));
    // The names offered come from the data store's entries.
    assert_eq!(
        browser.text("#attribute-hint"),
        "Attributes found on entries of corp: entryUUID, objectClass, sn, uid."
    );
    browser.fill("#map_userName", "uid");
    browser.fill("#map_familyName", "sn");
    // displayName by an expression, tried on an entry before saving.
    browser.click("tr[data-field=displayName] summary");
    browser.fill("#expr_displayName", "Join(\" \", ToUpper([uid]), [sn])");
    browser.fill("#preview_entry", &user_dn("ann"));
    browser.click("#preview-mapping");
    let preview = browser.text("#preview-result");
    assert!(preview.contains("\"displayName\": \"ANN S0\""), "{preview}");
    browser.screenshot("attribute-mapping");
    assert_eq!(browser.next(), "Activation & Summary");
    let summary = browser.text("#summary");
    assert!(summary.contains("familyName ← sn"), "{summary}");
    assert!(
        summary.contains("displayName ← cn, expression Join(\" \", ToUpper([uid]), [sn])"),
        "{summary}"
    );
    assert!(summary.contains(GROUPS), "{summary}");
    assert_eq!(browser.text("#active-state"), "Inactive");
}

/// Manage Data Stores, from the Source step: a wrong path is refused by Test and by Save, the
/// right one reads the directory's people; Save comes back to the Source step.
fn creates_a_data_store_from_the_source_step(browser: &mut Browser, ws: &Workspace) {
    browser.click("#manage-data-stores");
    assert!(browser.text("#data-stores").contains("No data store yet"));
    browser.screenshot("data-stores-empty");
    browser.click("#new-ldif");
    browser.fill("#name", "corp");
    browser.fill("#path", &path_str(&ws.path("missing.ldif")));
    browser.click("#test-data-store");
    assert!(
        browser.text("#test-result").contains("Test failed"),
        "{}",
        browser.page()
    );
    browser.screenshot("data-store-test-failed");
    browser.fill("#path", &path_str(&ws.ldif));
    browser.click("#test-data-store");
    let tested = browser.text("#test-result");
    assert!(
        tested.contains("Test succeeded") && tested.contains("3 of them inetOrgPerson users"),
        "{tested}"
    );
    assert!(tested.contains(&user_dn("ann")), "{tested}");
    browser.screenshot("data-store-test-succeeded");
    browser.click("#save");
}

/// Active with the wrong token: Save shows why, and nothing is saved.
fn a_wrong_token_is_refused_at_activation(browser: &mut Browser, target: &TargetProcess) {
    browser.click("#active");
    assert!(browser.text("#active-state").starts_with("Active"));
    browser.click("#save");
    assert!(
        browser
            .text(".save-problem")
            .contains("refused the credentials"),
        "{}",
        browser.page()
    );
    browser.screenshot("activation-refused");
    assert_eq!(target.client().users().len(), 0, "nothing was provisioned");
}

/// Back to the target: what was typed is still there; the right token passes the test.
fn goes_back_fixes_the_token_and_saves(browser: &mut Browser, target: &TargetProcess) {
    for _ in 0..7 {
        browser.back();
    }
    assert_eq!(browser.text("#step-title"), "Outbound Provisioning: Target");
    assert_eq!(browser.value("#scim_url"), target.url);
    browser.fill("#access_token", SECRET);
    browser.click("#test-connection");
    assert!(
        browser
            .text("#test-result")
            .contains("Connection succeeded"),
        "{}",
        browser.page()
    );
    browser.screenshot("target-test-succeeded");
    for _ in 0..7 {
        browser.next();
    }
    assert_eq!(browser.text("#step-title"), "Activation & Summary");
    assert!(browser.checked("#active"));
    browser.click("#save");
}

/// The dashboard: the users arrive without a restart of the service.
fn the_users_arrive_on_the_dashboard(browser: &mut Browser, target: &TargetProcess) {
    assert_eq!(browser.text("#connection-name"), "App");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let url = browser.current_url();
        browser.goto(&url);
        // Users are created as the first cycle reads them: the cycle may still be running
        // (its group stage) when they are counted.
        if browser.text("#channels tr[data-channel=staff] .users") == "3"
            && !browser
                .text("#cycles tbody tr:last-child")
                .contains("running")
        {
            break;
        }
        assert!(Instant::now() < deadline, "{}", browser.page());
        std::thread::sleep(Duration::from_millis(500));
    }
    assert_eq!(browser.text("#status"), "Active");
    assert!(browser.exists("#chart .cycle"));
    assert!(browser.text("#cycles").contains("staff"));
    // The first cycle created them (the oldest row: the service may have run another since).
    assert_eq!(
        browser.text("#cycles tbody tr:last-child td:nth-child(5)"),
        "3",
        "{}",
        browser.text("#cycles")
    );
    browser.screenshot("dashboard");
    assert_eq!(target.client().users().len(), 3);
    let ann = target.client().user_by_name("ann").unwrap();
    assert_eq!(ann["displayName"], "ANN S0", "the expression mapped it");
    assert_eq!(
        target.client().groups(),
        expected_groups(&[("engineering", &["ann", "bob"])])
    );

    // Run Now starts a cycle at once: the table gets a row more.
    let before = browser.text("#cycles tbody tr:first-child td:first-child");
    browser.click("#run-now");
    assert_eq!(browser.text("#flash"), "A cycle of staff starts now.");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let url = browser.current_url();
        browser.goto(&url);
        if browser.text("#cycles tbody tr:first-child td:first-child") != before {
            break;
        }
        assert!(Instant::now() < deadline, "{}", browser.page());
        std::thread::sleep(Duration::from_millis(300));
    }
    assert_eq!(
        browser.text("#cycles tbody tr:first-child td:nth-child(9)"),
        "ok"
    );
}

/// Edit: the wizard opens on the summary of the stored connection; a step is one click away;
/// what is not changed (the token above all) is kept.
fn edits_the_stored_connection(browser: &mut Browser, ws: &Workspace) {
    browser.click("#edit");
    assert_eq!(browser.text("h1"), "Edit Connection App");
    assert!(browser.text("#summary").contains("userName ← uid"));
    browser.click("li[data-step=options] a");
    assert!(browser.checked("#user_update"));
    browser.click("#user_update");
    browser.next();
    browser.click("li[data-step=summary] a");
    browser.screenshot("edit-summary");
    browser.click("#save");
    assert_eq!(browser.text("#flash"), "App saved.");
    let exported = ws.run(&["export", "App"]);
    assert_has(
        &exported,
        &[
            "user_update = false",
            "target.access_token is stored encrypted",
        ],
    );
    assert_eq!(browser.text("#status"), "Active");
}

/// OAuth 2 client credentials against a real authorization server: a wrong client secret is
/// refused at activation, with the server's reason.
fn a_wrong_client_secret_is_refused_at_activation(browser: &mut Browser) {
    let canaille = Canaille::start(3600);
    let introspected = IntrospectedScimServer::start(&canaille);
    browser.click("#create-connection");
    browser.next();
    browser.next();
    browser.fill("#name", "Vendor");
    browser.next();
    browser.fill("#scim_url", &introspected.url());
    browser.click("#authentication option[value=oauth2-client-credentials]");
    browser.fill("#token_endpoint", &canaille.token_endpoint());
    browser.fill("#client_id", BASIC_CLIENT.0);
    browser.fill("#client_secret", "wrong-secret");
    browser.next();
    browser.next();
    browser.fill("#channel_name", "staff");
    browser.next();
    browser.click("#data_store option[value=corp]");
    browser.next();
    browser.next();
    browser.fill("#base_dn", PEOPLE);
    browser.next();
    browser.fill("#map_userName", "uid");
    assert_eq!(browser.next(), "Activation & Summary");
    browser.click("#active");
    browser.click("#save");
    let refusal = browser.text(".save-problem");
    assert_has(
        &refusal,
        &["no access token could be obtained", "invalid_client"],
    );
    assert!(!browser.page().contains("wrong-secret"));
    browser.screenshot("client-secret-refused");
    browser.click("header nav a");
    assert!(
        !browser.text("#connections").contains("Vendor"),
        "nothing saved"
    );
}

/// The console's forms and pages without a browser: a form without the session's CSRF token is
/// refused whatever it asks, a page needs a session, and a connection that is not there is 404.
#[test]
fn forms_need_the_session_token_and_pages_a_stored_connection() {
    let ws = Workspace::new();
    ws.apply(
        &Config::new()
            .data_store(DataStore::ldif("corp", &ws.ldif))
            .connection("App", "http://127.0.0.1:9/scim/v2")
            .inactive()
            .channel("staff", "corp")
            .location("base_dn", PEOPLE)
            .map("userName", "uid"),
    );
    ws.admin_password(PASSWORD);
    let service = Service::start(&ws.data);
    let console = service.console();
    let http = no_redirects();

    // Without a session every page, and every form, leads to the sign-on page.
    for response in [
        http.get(format!("{console}/connections/App")).send(),
        http.post(format!("{console}/connections/App/toggle"))
            .header("content-type", FORM)
            .body(form(&[("csrf", "x")]))
            .send(),
    ] {
        let response = response.unwrap();
        assert_eq!(response.status().as_u16(), 303);
        assert_eq!(response.headers()["location"], "/console/login");
    }

    let session = Session {
        http,
        console,
        cookie: service.session_cookie(PASSWORD),
    };
    let page = session.get("/connections").text().unwrap();
    let csrf = csrf_of(&page);
    a_form_without_the_session_token_changes_nothing(&ws, &session);

    // The session's token passes; a connection that is not there is not found.
    let toggled = session.post("/connections/App/toggle", &[("csrf", &csrf)]);
    assert_eq!(toggled.status().as_u16(), 303);
    // The refusal is shown once by the next page, and is not in its URL.
    assert_eq!(toggled.headers()["location"], "/console/connections");
    let shown = session.get("/connections").text().unwrap();
    assert!(
        shown.contains("id=\"flash-error\">App stays as it was"),
        "{shown}"
    );
    let again = session.get("/connections").text().unwrap();
    assert!(!again.contains("flash-error"), "{again}");
    for path in [
        "/connections/Nope/toggle",
        "/connections/Nope/edit",
        "/connections/Nope/held",
    ] {
        let missing = session.post(path, &[("csrf", &csrf)]);
        assert_eq!(missing.status().as_u16(), 404, "{path}");
        assert_eq!(missing.text().unwrap(), "no such connection");
    }
    assert_eq!(session.get("/connections/Nope").status().as_u16(), 404);
    assert_eq!(session.get("/connections/App").status().as_u16(), 200);

    // Inactive: it can be deleted, with what the console says once.
    let deleted = session.post("/connections/App/delete", &[("csrf", &csrf)]);
    assert_eq!(deleted.headers()["location"], "/console/connections");
    let list = session.get("/connections").text().unwrap();
    assert!(
        list.contains("App deleted, with its records and history."),
        "{list}"
    );
    assert!(!list.contains("data-connection=\"App\""), "{list}");
    assert!(ws.fail(&["export", "App"]).contains("no connection named"));

    let signed_off = session.post("/logout", &[("csrf", &csrf)]);
    assert_eq!(signed_off.status().as_u16(), 303);
    assert_eq!(
        session.get("/connections").headers()["location"],
        "/console/login"
    );
}

/// A form without the session's token changes nothing, whatever it asks.
fn a_form_without_the_session_token_changes_nothing(ws: &Workspace, session: &Session) {
    for path in [
        "/connections/App/toggle",
        "/connections/App/edit",
        "/connections/App/held",
        "/connections/App/delete",
        "/data-stores/save",
        "/data-stores/test",
        "/data-stores/corp/delete",
        "/wizard/new",
        "/wizard/general",
        "/wizard/target/test",
        "/logout",
    ] {
        for form in [&[("csrf", "stale")][..], &[][..]] {
            let refused = session.post(path, form);
            assert_eq!(refused.status().as_u16(), 403, "{path}");
            assert!(
                refused.text().unwrap().contains("the form is stale"),
                "{path}"
            );
        }
    }
    let stored = ws.run(&["export", "App"]);
    assert!(stored.contains("active = false"), "{stored}");
}

/// A signed-on console session, driven without a browser.
struct Session {
    http: reqwest::blocking::Client,
    console: String,
    cookie: String,
}

impl Session {
    /// The administrator signed on to the service's console.
    fn signed_on(service: &Service) -> Session {
        Session {
            http: no_redirects(),
            console: service.console(),
            cookie: service.session_cookie(PASSWORD),
        }
    }

    fn get(&self, path: &str) -> reqwest::blocking::Response {
        self.http
            .get(format!("{}{path}", self.console))
            .header("cookie", &self.cookie)
            .send()
            .unwrap()
    }

    fn post(&self, path: &str, fields: &[(&str, &str)]) -> reqwest::blocking::Response {
        self.http
            .post(format!("{}{path}", self.console))
            .header("cookie", &self.cookie)
            .header("content-type", FORM)
            .body(form(fields))
            .send()
            .unwrap()
    }
}

/// The session's CSRF token, from any of its pages with a form.
fn csrf_of(page: &str) -> String {
    page.split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("no CSRF token in {page}"))
        .to_owned()
}

const FORM: &str = "application/x-www-form-urlencoded";

/// A form body, as a browser sends it.
fn form(fields: &[(&str, &str)]) -> String {
    let encode = |text: &str| -> String {
        text.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect()
    };
    fields
        .iter()
        .map(|(name, value)| format!("{}={}", encode(name), encode(value)))
        .collect::<Vec<_>>()
        .join("&")
}

/// An LDAP data store made, tested, edited and deleted in the console against a real slapd:
/// Test binds and shows a few users; a wrong password is named; an empty password box keeps the
/// stored one; a data store a channel reads cannot be deleted.
#[test]
fn ldap_data_stores_are_managed_in_the_console() {
    use scimbridge_testkit::slapd::{SYNC_DN, SYNC_PASSWORD, Slapd};
    let ws = Workspace::new();
    let slapd = Slapd::start(ws.dir());
    // slapd sets each entry's entryUUID itself.
    slapd.add(&changes([
        Entry::person("ann").with("cn", "Ann Lee").with("sn", "Lee"),
        Entry::person("bob")
            .with("cn", "Bob Stone")
            .with("sn", "Stone"),
    ]));
    ws.admin_password(PASSWORD);
    let service = Service::start(&ws.data);
    let session = Session::signed_on(&service);
    let page = session.get("/data-stores/new?kind=ldap").text().unwrap();
    let csrf = csrf_of(&page);
    let fields = |password: &str| {
        vec![
            ("csrf", csrf.clone()),
            ("kind", "ldap".to_owned()),
            ("name", "corp-ldap".to_owned()),
            ("ldap_type", "openldap".to_owned()),
            ("hostnames", slapd.url.clone()),
            ("bind_method", "simple".to_owned()),
            ("user_dn", SYNC_DN.to_owned()),
            ("bind_password", password.to_owned()),
            ("connection_timeout", "10".to_owned()),
            ("read_timeout", "60".to_owned()),
        ]
    };
    let post = |path: &str, fields: &[(&str, String)]| {
        let borrowed: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
        session.post(path, &borrowed)
    };

    let refused = post("/data-stores/test", &fields("wrong")).text().unwrap();
    assert_has(&refused, &["Test failed", "corp-ldap"]);
    // The server's own files are not read on a console user's say.
    let reference = post("/data-stores/save", &fields("file:/etc/hostname"));
    assert_eq!(reference.status().as_u16(), 422);
    assert!(
        reference
            .text()
            .unwrap()
            .contains("env: and file: references are taken only from configuration files")
    );
    let tested = post("/data-stores/test", &fields(SYNC_PASSWORD))
        .text()
        .unwrap();
    assert_has(
        &tested,
        &[
            "Test succeeded",
            "bind accepted",
            "2 user entries read below dc=example,dc=com",
            &user_dn("ann"),
            "entryUUID",
        ],
    );

    let saved = post("/data-stores/save", &fields(SYNC_PASSWORD));
    assert_eq!(saved.status().as_u16(), 303);
    assert_eq!(saved.headers()["location"], "/console/data-stores");
    let list = session.get("/data-stores").text().unwrap();
    assert_has(
        &list,
        &["Data store corp-ldap saved.", "LDAP directory", &slapd.url],
    );
    assert!(
        !ws.data_holds(SYNC_PASSWORD),
        "the password is encrypted at rest"
    );

    // Edit with the password box empty: the stored password is kept and still binds.
    let edit = session.get("/data-stores/corp-ldap/edit").text().unwrap();
    assert!(edit.contains("(kept; type to replace)"), "{edit}");
    assert!(!edit.contains(SYNC_PASSWORD));
    let mut kept = fields("");
    kept.push(("editing", "corp-ldap".to_owned()));
    kept.push(("page_size", "100".to_owned()));
    assert_eq!(post("/data-stores/save", &kept).status().as_u16(), 303);
    let tested = post("/data-stores/test", &kept).text().unwrap();
    assert!(tested.contains("Test succeeded"), "{tested}");
    let exported = ws.run(&["export"]);
    assert_has(&exported, &["name = \"corp-ldap\"", "page_size = 100"]);

    // Another host with the box empty: the saved password goes nowhere else.
    let elsewhere = {
        let mut fields = kept.clone();
        for (key, value) in &mut fields {
            if *key == "hostnames" {
                *value = "127.0.0.1:9".to_owned();
            }
        }
        fields
    };
    let refused = post("/data-stores/save", &elsewhere);
    assert_eq!(refused.status().as_u16(), 422);
    assert!(refused.text().unwrap().contains("type the password again"));
    let tested = post("/data-stores/test", &elsewhere).text().unwrap();
    assert!(tested.contains("Test failed"), "{tested}");
    assert!(
        tested.contains("bind_password"),
        "tested without the password: {tested}"
    );
    // Nor through a new form that borrows the name.
    let mut borrowed = elsewhere.clone();
    borrowed.retain(|(key, _)| *key != "editing");
    let tested = post("/data-stores/test", &borrowed).text().unwrap();
    assert!(tested.contains("bind_password"), "{tested}");

    // The console reads directory files, not any file of the server.
    let other = post(
        "/data-stores/test",
        &[
            ("csrf", csrf.clone()),
            ("kind", "ldif".to_owned()),
            ("name", "sneaky".to_owned()),
            ("path", "/etc/hostname".to_owned()),
        ],
    )
    .text()
    .unwrap();
    assert!(
        other.contains("the console reads files named *.ldif"),
        "{other}"
    );

    // A channel reads it: Delete is refused, saying which.
    ws.apply_unchecked(&Config::reading(
        DataStore::ldap("corp-ldap", "openldap", &slapd.url, SYNC_DN, SYNC_PASSWORD),
        "http://127.0.0.1:9/scim/v2",
        SECRET,
    ));
    let deleted = post("/data-stores/corp-ldap/delete", &[("csrf", csrf.clone())]);
    assert_eq!(deleted.status().as_u16(), 303);
    let list = session.get("/data-stores").text().unwrap();
    assert_has(&list, &["corp-ldap was not deleted", "app/staff"]);
}

/// What the dashboard says when the guard holds operations (one banner naming the rule once)
/// and when the target is down; Run Now on an inactive connection says why nothing started.
#[test]
fn the_dashboard_names_the_guard_s_rule_once_and_a_target_found_down() {
    let ws = Workspace::new();
    let target = ws.target(SECRET);
    ws.write_ldif(&people_named(&["ann", "bob", "cara", "dan"]));
    ws.apply(&Config::ldif(&ws.ldif, &target.url, SECRET));
    ws.sync();
    // The file cut short: both leavers' disables are held for one reason.
    ws.write_ldif(&people_named(&["ann", "bob"]));
    ws.sync();
    ws.admin_password(PASSWORD);
    let service = Service::start(&ws.data);
    let session = Session::signed_on(&service);
    let page = session.get("/connections/app").text().unwrap();
    let banner = page
        .split("id=\"held-banner\"")
        .nth(1)
        .and_then(|rest| rest.split("</div>").next())
        .unwrap_or_else(|| panic!("no held banner in {page}"));
    assert!(
        banner.contains("2 operations are held by the mass-change guard"),
        "{banner}"
    );
    assert!(
        banner.contains("2 held: left the source location; held by the mass-change guard"),
        "{banner}"
    );
    assert_eq!(
        page.matches("looks cut short").count(),
        1,
        "the rule is said once"
    );
    assert!(!page.contains("id=\"target-down\""));

    drop(target);
    ws.write_ldif(&people_named(&["ann", "bob", "cara", "dan", "eve"]));
    ws.sync_expecting(4, &[]);
    let page = session.get("/connections/app").text().unwrap();
    assert!(page.contains("id=\"target-down\""), "{page}");
    assert!(
        page.contains("The last cycle found the target unreachable"),
        "{page}"
    );
    assert!(page.contains("target unreachable"), "{page}");

    let csrf = csrf_of(&page);
    ws.run(&["connection", "deactivate", "app"]);
    service
        .process
        .wait_for_output("channel app/staff: stopped");
    let run = session.post("/connections/app/run", &[("csrf", &csrf)]);
    assert_eq!(run.headers()["location"], "/console/connections/app");
    let page = session.get("/connections/app").text().unwrap();
    assert!(page.contains("Nothing was started: connection"), "{page}");
}

/// A second channel added from the dashboard, through the wizard's channel steps, and the
/// first edited without touching the second.
#[test]
fn channels_are_added_and_edited_one_at_a_time() {
    let ws = Workspace::new();
    let target = ws.target(SECRET);
    ws.write_ldif(&people_named(&["ann", "bob"]));
    ws.apply(&Config::ldif(&ws.ldif, &target.url, SECRET));
    ws.admin_password(PASSWORD);
    let service = Service::start(&ws.data);
    let session = Session::signed_on(&service);
    let page = session.get("/connections/app").text().unwrap();
    assert!(page.contains("id=\"add-channel\""), "{page}");
    let csrf = csrf_of(&page);
    let step = |name: &str, fields: &[(&str, &str)]| {
        let mut all = vec![("csrf", csrf.as_str()), ("next", "1")];
        all.extend_from_slice(fields);
        let answer = session.post(&format!("/wizard/{name}"), &all);
        assert_eq!(
            answer.status().as_u16(),
            303,
            "{name}: {}",
            answer.text().unwrap()
        );
    };

    let opened = session.post("/connections/app/channels/new", &[("csrf", &csrf)]);
    assert_eq!(opened.headers()["location"], "/console/wizard/channel");
    let channel_page = session.get("/wizard/channel").text().unwrap();
    assert!(
        channel_page.contains("1 other channel(s)"),
        "{channel_page}"
    );
    step(
        "channel",
        &[
            ("channel_name", "contractors"),
            ("max_threads", "1"),
            ("timeout", "30"),
        ],
    );
    step("source", &[("data_store", "corp")]);
    step("source-settings", &[]);
    step(
        "location",
        &[("base_dn", PEOPLE), ("user_filter", "(uid=bob)")],
    );
    // A new channel starts from the directory type's usual mapping.
    let mapping = session.get("/wizard/mapping").text().unwrap();
    assert!(
        mapping.contains("id=\"map_userName\" name=\"map_userName\" value=\"uid\""),
        "{mapping}"
    );
    step(
        "mapping",
        &[("map_userName", "uid"), ("map_familyName", "sn")],
    );
    let saved = session.post(
        "/wizard/summary",
        &[("csrf", &csrf), ("save", "1"), ("active", "on")],
    );
    assert_eq!(saved.status().as_u16(), 303, "{}", saved.text().unwrap());
    let exported = ws.run(&["export", "app"]);
    assert_eq!(
        exported.matches("[[connection.channel]]").count(),
        2,
        "{exported}"
    );
    assert_has(
        &exported,
        &["name = \"staff\"", "name = \"contractors\"", "(uid=bob)"],
    );

    // The preview maps through the channel being edited, with its mapping as typed.
    session.post(
        "/connections/app/channels/contractors/edit",
        &[("csrf", &csrf)],
    );
    let preview = session
        .post(
            "/wizard/mapping/preview",
            &[
                ("csrf", &csrf),
                ("map_userName", "uid"),
                ("map_displayName", "sn"),
                ("preview_entry", &user_dn("bob")),
            ],
        )
        .text()
        .unwrap();
    assert!(
        preview.contains("&#34;displayName&#34;: &#34;S1&#34;"),
        "{preview}"
    );

    // Editing the first channel leaves the second as it is.
    session.post("/connections/app/channels/staff/edit", &[("csrf", &csrf)]);
    step(
        "channel",
        &[
            ("channel_name", "staff"),
            ("max_threads", "3"),
            ("timeout", "60"),
        ],
    );
    let saved = session.post(
        "/wizard/summary",
        &[("csrf", &csrf), ("save", "1"), ("active", "on")],
    );
    assert_eq!(saved.status().as_u16(), 303, "{}", saved.text().unwrap());
    let exported = ws.run(&["export", "app"]);
    assert_has(
        &exported,
        &["max_threads = 3", "name = \"contractors\"", "(uid=bob)"],
    );
    assert_eq!(
        session
            .post("/connections/app/channels/nope/edit", &[("csrf", &csrf)])
            .status()
            .as_u16(),
        404
    );
}
