//! A real SMTP sink for tests: aiosmtpd (Debian's `python3-aiosmtpd`) writing
//! every received message into a maildir.

use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The system interpreter; `python3` on PATH may be a build without aiosmtpd.
const PYTHON: &str = "/usr/bin/python3";
const START_TIMEOUT: Duration = Duration::from_secs(10);
const POLL_STEP: Duration = Duration::from_millis(50);

pub struct SmtpServer {
    port: u16,
    maildir: tempfile::TempDir,
    child: Option<Child>,
}

impl SmtpServer {
    /// Start aiosmtpd on a free loopback port with a fresh maildir.
    pub fn start() -> SmtpServer {
        let port = {
            let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind 127.0.0.1:0");
            l.local_addr().expect("local addr").port()
        };
        let maildir = tempfile::tempdir().expect("maildir tempdir");
        // Python's mailbox.Maildir only creates the layout for a missing directory.
        for sub in ["tmp", "new", "cur"] {
            std::fs::create_dir_all(maildir.path().join(sub)).expect("maildir layout");
        }
        let mut server = SmtpServer {
            port,
            maildir,
            child: None,
        };
        server.spawn();
        server
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `smtp://127.0.0.1:PORT?tls=none`
    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}?tls=none", self.port)
    }

    pub fn maildir(&self) -> &Path {
        self.maildir.path()
    }

    /// Raw messages received so far (maildir `new/` and `cur/`), oldest first.
    pub fn messages(&self) -> Vec<String> {
        let mut files: Vec<(std::time::SystemTime, PathBuf)> = Vec::new();
        for sub in ["new", "cur"] {
            let Ok(entries) = std::fs::read_dir(self.maildir.path().join(sub)) else {
                continue;
            };
            for e in entries.flatten() {
                let path = e.path();
                if path.is_file() {
                    let mtime = e
                        .metadata()
                        .and_then(|m| m.modified())
                        .unwrap_or(std::time::UNIX_EPOCH);
                    files.push((mtime, path));
                }
            }
        }
        files.sort();
        files
            .into_iter()
            .map(|(_, p)| {
                String::from_utf8_lossy(&std::fs::read(&p).expect("read message")).into_owned()
            })
            .collect()
    }

    /// Kill the server; the port and maildir are kept for [`SmtpServer::restart`].
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        // Wait until the port really refuses connections.
        let deadline = Instant::now() + START_TIMEOUT;
        while self.accepts() && Instant::now() < deadline {
            std::thread::sleep(POLL_STEP);
        }
    }

    /// Bring the server back on the same port and maildir.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    fn accepts(&self) -> bool {
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, self.port));
        TcpStream::connect_timeout(&addr, POLL_STEP).is_ok()
    }

    fn spawn(&mut self) {
        let mut child = Command::new(PYTHON)
            .args(["-m", "aiosmtpd", "-n", "-l"])
            .arg(format!("127.0.0.1:{}", self.port))
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(self.maildir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("spawning {PYTHON} -m aiosmtpd: {e}"));
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if self.accepts() {
                break;
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!(
                    "aiosmtpd exited with {status} before accepting connections \
                     (is python3-aiosmtpd installed for {PYTHON}?)"
                );
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "aiosmtpd did not accept connections on port {} within {START_TIMEOUT:?}",
                    self.port
                );
            }
            std::thread::sleep(POLL_STEP);
        }
        self.child = Some(child);
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
