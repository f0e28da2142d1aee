//! A throwaway PKI made with the `openssl` command (a CA, a server certificate for 127.0.0.1
//! and a client certificate) and an HTTPS server using it (`python/tls_scim.py`).

use std::path::{Path, PathBuf};
use std::process::{Child, Command};

pub struct TestPki {
    pub ca_certificate: PathBuf,
    pub server_certificate: PathBuf,
    pub server_key: PathBuf,
    pub client_certificate: PathBuf,
    pub client_key: PathBuf,
}

fn openssl(dir: &Path, args: &[&str]) {
    let output = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("cannot run openssl (scripts/test installs it): {e}"));
    assert!(
        output.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

impl TestPki {
    pub fn generate(dir: &Path) -> TestPki {
        openssl(
            dir,
            &[
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
                "-days",
                "2",
                "-subj",
                "/CN=scimbridge test CA",
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
            ],
        );
        for (name, extension) in [
            (
                "server",
                "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n",
            ),
            (
                "client",
                "extendedKeyUsage=clientAuth\nbasicConstraints=CA:FALSE\n",
            ),
        ] {
            std::fs::write(dir.join(format!("{name}.ext")), extension).unwrap();
            openssl(
                dir,
                &[
                    "req",
                    "-newkey",
                    "ec",
                    "-pkeyopt",
                    "ec_paramgen_curve:prime256v1",
                    "-nodes",
                    "-keyout",
                    &format!("{name}.key"),
                    "-out",
                    &format!("{name}.csr"),
                    "-subj",
                    &format!("/CN=scimbridge test {name}"),
                ],
            );
            openssl(
                dir,
                &[
                    "x509",
                    "-req",
                    "-in",
                    &format!("{name}.csr"),
                    "-CA",
                    "ca.pem",
                    "-CAkey",
                    "ca.key",
                    "-CAcreateserial",
                    "-out",
                    &format!("{name}.pem"),
                    "-days",
                    "2",
                    "-extfile",
                    &format!("{name}.ext"),
                ],
            );
        }
        TestPki {
            ca_certificate: dir.join("ca.pem"),
            server_certificate: dir.join("server.pem"),
            server_key: dir.join("server.key"),
            client_certificate: dir.join("client.pem"),
            client_key: dir.join("client.key"),
        }
    }
}

/// An HTTPS server answering `/scim/Users` with an empty SCIM list and `/html/…` with a page.
pub struct TlsServer {
    child: Child,
    pub port: u16,
}

impl TlsServer {
    /// With `require_client_certificate`, only clients with a certificate of the PKI's CA get in.
    pub fn start(pki: &TestPki, require_client_certificate: bool) -> TlsServer {
        let port = crate::free_port();
        let mut args = vec![
            port.to_string(),
            pki.server_certificate.display().to_string(),
            pki.server_key.display().to_string(),
        ];
        if require_client_certificate {
            args.push(pki.ca_certificate.display().to_string());
        }
        let child = crate::oauth::start_script("tls_scim.py", &args);
        TlsServer { child, port }
    }

    pub fn url(&self, path: &str) -> String {
        format!("https://127.0.0.1:{}{path}", self.port)
    }
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
