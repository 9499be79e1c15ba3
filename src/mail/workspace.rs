//! Mail of the team workspace: the sign-in link, and the address of the page that every
//! reminder, flag alert, digest line and handover mail links to (the templates place it).

use super::Language;

/// The outbox kind of the sign-in mail. Its body is dropped as soon as it is sent, and when
/// its link is used or expires: the link is a secret.
pub const SIGNIN_LINK_KIND: &str = "signin_link";

#[derive(askama::Template)]
#[template(path = "mail/signin.nl.txt", escape = "none")]
struct SigninNl<'a> {
    url: &'a str,
    minutes: i64,
}

#[derive(askama::Template)]
#[template(path = "mail/signin.en.txt", escape = "none")]
struct SigninEn<'a> {
    url: &'a str,
    minutes: i64,
}

/// The sign-in mail: `(subject, body)`, from `templates/mail/signin.*.txt`. It carries only
/// the one-time link, valid `minutes`.
pub fn signin_link(lang: Language, url: &str, minutes: i64) -> (String, String) {
    use askama::Template;
    super::templates::finish(match lang {
        Language::Nl => SigninNl { url, minutes }.render(),
        Language::En => SigninEn { url, minutes }.render(),
    })
}

/// The workspace address of an item: `base_url` + `/team/…` + pseudonymous reference.
pub fn url(base_url: &str, path: &str) -> String {
    format!("{}{path}", base_url.trim_end_matches('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_the_signin_mail() {
        assert_eq!(
            url("http://x/", "/team/checkins/C-1"),
            "http://x/team/checkins/C-1"
        );
        let (s, body) = signin_link(Language::En, "http://x/team/signin/abc", 15);
        assert!(s.contains("sign-in") && body.contains("    http://x/team/signin/abc\n"));
        assert!(body.contains("valid for 15 minutes"), "{body}");
    }
}
