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
    /// Recipients refused at RCPT TO with `550 5.1.1` (a permanent failure), or with
    /// `451 4.3.0` (a temporary one) when written `~address`.
    reject: Vec<String>,
    /// While this file does not exist, every message is stored at once but answered only
    /// when it appears (at most 60 s later): a relay slow to confirm DATA.
    hold_until: Option<PathBuf>,
}

/// aiosmtpd's Mailbox handler that stores each message at once and answers its DATA only
/// once the file given after the maildir exists (bounded: 60 s).
const HOLDING: &str = r#"
import asyncio, os, sys
from aiosmtpd.handlers import Mailbox
from aiosmtpd.smtp import SMTP

class Holding(Mailbox):
    def __init__(self, d, release):
        super().__init__(d)
        self.release = release

    async def handle_DATA(self, server, session, envelope):
        reply = await super().handle_DATA(server, session, envelope)
        for _ in range(1200):
            if os.path.exists(self.release):
                break
            await asyncio.sleep(0.05)
        return reply

host, port, d, release = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
loop = asyncio.new_event_loop()
h = Holding(d, release)
loop.run_until_complete(loop.create_server(lambda: SMTP(h), host, port))
loop.run_forever()
"#;

/// aiosmtpd's Mailbox handler that refuses the recipients given after the maildir.
const REJECTING: &str = r#"
import asyncio, sys
from aiosmtpd.handlers import Mailbox
from aiosmtpd.smtp import SMTP

class Rejecting(Mailbox):
    def __init__(self, d, reject):
        super().__init__(d)
        self.reject = set(reject)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.reject:
            return '550 5.1.1 mailbox unavailable'
        if '~' + address in self.reject:
            return '451 4.3.0 try again later'
        envelope.rcpt_tos.append(address)
        return '250 OK'

host, port, d = sys.argv[1], int(sys.argv[2]), sys.argv[3]
loop = asyncio.new_event_loop()
h = Rejecting(d, sys.argv[4:])
loop.run_until_complete(loop.create_server(lambda: SMTP(h), host, port))
loop.run_forever()
"#;

impl SmtpServer {
    /// Start aiosmtpd on a free loopback port with a fresh maildir.
    pub fn start() -> SmtpServer {
        Self::start_rejecting(&[])
    }

    /// Like [`SmtpServer::start`], refusing mail for `reject`: `address` with a permanent
    /// error (550), `~address` with a temporary one (451).
    pub fn start_rejecting(reject: &[&str]) -> SmtpServer {
        Self::start_with(reject, None)
    }

    /// Like [`SmtpServer::start`], but slow to confirm: each message is stored at once and
    /// its DATA answered only once `release` exists (at most 60 s later).
    pub fn start_holding(release: &Path) -> SmtpServer {
        Self::start_with(&[], Some(release.to_path_buf()))
    }

    fn start_with(reject: &[&str], hold_until: Option<PathBuf>) -> SmtpServer {
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
            reject: reject.iter().map(|r| r.to_string()).collect(),
            hold_until,
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
        let mut cmd = Command::new(PYTHON);
        if let Some(release) = &self.hold_until {
            cmd.args(["-c", HOLDING, "127.0.0.1"])
                .arg(self.port.to_string())
                .arg(self.maildir.path())
                .arg(release);
        } else if self.reject.is_empty() {
            cmd.args(["-m", "aiosmtpd", "-n", "-l"])
                .arg(format!("127.0.0.1:{}", self.port))
                .args(["-c", "aiosmtpd.handlers.Mailbox"])
                .arg(self.maildir.path());
        } else {
            cmd.args(["-c", REJECTING, "127.0.0.1"])
                .arg(self.port.to_string())
                .arg(self.maildir.path())
                .args(&self.reject);
        }
        let mut child = cmd
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
