//! An independent reader for the calendar invitations: Python's `icalendar` in a venv.
//! `NAZORG_TEST_PYTHON` names a python that has it (scripts/test makes one); without it the
//! venv is made once under the target dir (`test-tools/venv`, from PyPI).

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The python with `icalendar` importable.
pub fn python() -> &'static Path {
    static PY: OnceLock<PathBuf> = OnceLock::new();
    PY.get_or_init(|| {
        if let Some(p) = std::env::var_os("NAZORG_TEST_PYTHON") {
            return PathBuf::from(p);
        }
        let venv = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join("..")
            .join("test-tools")
            .join("venv");
        let py = venv.join("bin").join("python");
        let has = |py: &Path| {
            Command::new(py)
                .args(["-c", "import icalendar"])
                .status()
                .is_ok_and(|s| s.success())
        };
        if !has(&py) {
            let lock = venv.with_extension("lock");
            std::fs::create_dir_all(venv.parent().unwrap()).unwrap();
            // Two test processes never build the venv at once: the first to create the lock
            // file builds it, the other waits (bounded) for it.
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&lock)
            {
                Ok(_) => {
                    let ok = Command::new("/usr/bin/python3")
                        .args(["-m", "venv"])
                        .arg(&venv)
                        .status()
                        .unwrap()
                        .success()
                        && Command::new(venv.join("bin").join("pip"))
                            .args(["install", "-q", "icalendar"])
                            .status()
                            .unwrap()
                            .success();
                    std::fs::remove_file(&lock).ok();
                    assert!(
                        ok,
                        "could not make the icalendar venv in {}",
                        venv.display()
                    );
                }
                Err(_) => {
                    for _ in 0..600 {
                        if !lock.exists() {
                            break;
                        }
                        std::thread::sleep(std::time::Duration::from_millis(500));
                    }
                }
            }
            assert!(has(&py), "python with icalendar missing: {}", py.display());
        }
        py
    })
}

const READER: &str = r#"
import email, json, sys
from email import policy
import icalendar
out = []
for path in sys.argv[1:]:
    with open(path, 'rb') as f:
        msg = email.message_from_binary_file(f, policy=policy.default)
    for part in msg.walk():
        if part.get_content_type() != 'text/calendar':
            continue
        cal = icalendar.Calendar.from_ical(part.get_payload(decode=True))
        for ev in cal.walk('VEVENT'):
            out.append({
                'file': path,
                'subject': str(msg['subject']),
                'content_method': part.get_param('method'),
                'filename': part.get_filename(),
                'method': str(cal.get('METHOD')),
                'uid': str(ev.get('UID')),
                'sequence': int(ev.get('SEQUENCE')),
                'dtstart': ev.decoded('DTSTART').isoformat(),
                'summary': str(ev.get('SUMMARY')),
                'description': str(ev.get('DESCRIPTION')),
                'status': str(ev.get('STATUS')),
                'organizer': str(ev.get('ORGANIZER')),
                'attendee': str(ev.get('ATTENDEE')),
            })
print(json.dumps(out))
"#;

/// Every VEVENT in the `text/calendar` parts of the given .eml files, in file order.
pub fn events(emls: &[PathBuf]) -> Vec<Value> {
    let out = Command::new(python())
        .arg("-c")
        .arg(READER)
        .args(emls)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "icalendar reader: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice::<Value>(&out.stdout)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}
