//! A `nazorg serve` process under test: spawned with its log in a file, signalled with
//! `kill`, killed on drop whatever happens.

use super::env::TestEnv;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

const STEP: Duration = Duration::from_millis(100);

/// A running `nazorg serve`, killed (SIGKILL) and reaped on drop whatever happens.
pub struct Daemon {
    child: Child,
    stderr: PathBuf,
}

impl Daemon {
    pub fn spawn(env: &TestEnv, name: &str, args: &[&str], notify: Option<&PathBuf>) -> Daemon {
        let stderr = env.path(&format!("{name}.stderr"));
        let mut cmd = env.command(args);
        cmd.stdout(Stdio::null())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .env_remove("NOTIFY_SOCKET");
        if let Some(sock) = notify {
            cmd.env("NOTIFY_SOCKET", sock);
        }
        Daemon {
            child: cmd.spawn().unwrap(),
            stderr,
        }
    }

    pub fn pid(&self) -> String {
        self.child.id().to_string()
    }

    pub fn signal(&self, sig: &str) {
        let st = Command::new("kill")
            .args([sig, &self.pid()])
            .status()
            .unwrap();
        assert!(st.success(), "kill {sig} failed");
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    pub fn running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// The exit status within `limit`, or `None` if still running.
    pub fn wait_for(&mut self, limit: Duration) -> Option<ExitStatus> {
        let start = Instant::now();
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                return Some(st);
            }
            if start.elapsed() > limit {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits (bounded) until stderr contains `needle`; panics with the log if it never does.
    pub fn wait_log(&mut self, needle: &str, limit: Duration) {
        let start = Instant::now();
        while !self.log().contains(needle) {
            assert!(
                self.running(),
                "daemon exited before logging {needle:?}:\n{}",
                self.log()
            );
            assert!(
                start.elapsed() < limit,
                "no {needle:?} within {limit:?}:\n{}",
                self.log()
            );
            std::thread::sleep(STEP);
        }
    }

    /// SIGTERM, then a clean exit (code 0) within 10 s; returns the log.
    pub fn terminate(self) -> String {
        self.signal("-TERM");
        self.exits_cleanly()
    }

    /// A clean exit (code 0) within 10 s of an earlier SIGTERM; returns the log.
    pub fn exits_cleanly(mut self) -> String {
        let st = self.wait_for(Duration::from_secs(10));
        let log = self.log();
        assert!(st.is_some(), "no exit within 10 s of SIGTERM:\n{log}");
        assert_eq!(st.unwrap().code(), Some(0), "unclean exit:\n{log}");
        log
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}
