//! End-to-end: `Transport::smtp` against a real aiosmtpd.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support::smtp::SmtpServer;
use chrono::{TimeZone, Utc};
use nazorg::mail::{Attachment, OutgoingMessage, SendError, Transport, message_id};

fn message(key: &str, to: &str, subject: &str, csv_row: &str) -> OutgoingMessage {
    OutgoingMessage {
        outbox_key: key.to_owned(),
        from: "Nazorg <nazorg@veiligthuis.example>".to_owned(),
        to: vec![to.to_owned()],
        cc: vec![],
        subject: subject.to_owned(),
        body_text: "Dit bericht bevat bewust geen persoonsgegevens.\n".to_owned(),
        attachments: vec![Attachment {
            filename: "contactmomenten.csv".to_owned(),
            content_type: "text/csv".to_owned(),
            bytes: format!("checkin,due\r\n{csv_row}\r\n").into_bytes(),
        }],
    }
}

/// The header value of `name` in a raw message (first occurrence, unfolded).
fn header<'a>(raw: &'a str, name: &str) -> Option<&'a str> {
    let prefix = format!("{}:", name.to_ascii_lowercase());
    raw.lines()
        .take_while(|l| !l.is_empty())
        .find(|l| l.to_ascii_lowercase().starts_with(&prefix))
        .map(|l| l[prefix.len()..].trim())
}

#[tokio::test]
async fn smtp_delivery_failure_and_recovery() {
    let mut server = SmtpServer::start();
    let transport = Transport::smtp(&server.url()).unwrap();
    assert_eq!(
        transport.describe(),
        format!("smtp://127.0.0.1:{}?tls=none", server.port())
    );
    let date = Utc.with_ymd_and_hms(2027, 1, 15, 8, 0, 0).unwrap();

    let a = message(
        "reminder:C-AAA:due",
        "wijkteam-amsterdam@gemeente.example",
        "[Nazorg] Check-in F-7Q2K9X due 2027-01-15",
        "C-AAA,2027-01-15",
    );
    let b = message(
        "reminder:C-BBB:overdue:1",
        "wijkteam-utrecht@gemeente.example",
        "[Nazorg] Contactmoment F-9X4P1Z gepland op 2027-02-01",
        "C-BBB,2027-02-01",
    );
    transport.send(&a, date).await.unwrap();
    transport.send(&b, date).await.unwrap();

    let received = server.messages();
    assert_eq!(received.len(), 2, "{received:#?}");
    for m in [&a, &b] {
        let id = message_id(&m.outbox_key, &m.from);
        let raw = received
            .iter()
            .find(|r| header(r, "Message-ID") == Some(id.as_str()))
            .unwrap_or_else(|| panic!("no message with Message-ID {id}: {received:#?}"));
        assert_eq!(header(raw, "To"), Some(m.to[0].as_str()), "{raw}");
        assert_eq!(header(raw, "Subject"), Some(m.subject.as_str()), "{raw}");
        assert_eq!(
            header(raw, "X-Nazorg-Key"),
            Some(m.outbox_key.as_str()),
            "{raw}"
        );
        assert!(raw.contains("multipart/mixed"), "{raw}");
        assert!(raw.contains("filename=\"contactmomenten.csv\""), "{raw}");
        let row = String::from_utf8(m.attachments[0].bytes.clone()).unwrap();
        let row = row.lines().nth(1).unwrap();
        assert!(raw.contains(row), "attachment row {row:?} missing: {raw}");
        // The envelope recipient as seen by the server.
        assert!(raw.contains(&m.to[0]), "{raw}");
    }

    server.stop();
    let c = message(
        "reminder:C-CCC:due",
        "wijkteam-amsterdam@gemeente.example",
        "[Nazorg] Check-in F-2B7T5W due 2027-03-01",
        "C-CCC,2027-03-01",
    );
    let err = transport.send(&c, date).await.unwrap_err();
    assert!(matches!(err, SendError::Transient(_)), "{err:?}");

    server.restart();
    transport.send(&c, date).await.unwrap();
    let received = server.messages();
    assert_eq!(received.len(), 3);
    let id = message_id(&c.outbox_key, &c.from);
    assert!(
        received
            .iter()
            .any(|r| header(r, "Message-ID") == Some(id.as_str())),
        "{received:#?}"
    );
}
