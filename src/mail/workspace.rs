//! Mail of the team workspace: the sign-in link, and the deep link that every reminder,
//! flag alert, digest line and handover mail carries to exactly its item.

use super::Language;

/// The sign-in mail: `(subject, body)`. It carries only the one-time link.
pub fn signin_link(lang: Language, url: &str) -> (String, String) {
    match lang {
        Language::Nl => (
            "[Nazorg] Uw aanmeldlink voor de werkplek".into(),
            format!(
                "U vroeg om een aanmeldlink voor de Nazorg-werkplek.\n\n\
                 Aanmelden:\n    {url}\n\n\
                 De link is 15 minuten geldig, werkt één keer en alleen in de browser waarin u\n\
                 hem aanvroeg.\n\n\
                 Heeft u dit niet aangevraagd? Dan kunt u dit bericht negeren.\n\n\
                 -- \n\
                 Dit is een automatisch bericht van Nazorg.\n"
            ),
        ),
        Language::En => (
            "[Nazorg] Your sign-in link for the workspace".into(),
            format!(
                "You asked for a sign-in link for the Nazorg workspace.\n\n\
                 Sign in:\n    {url}\n\n\
                 The link is valid for 15 minutes, works once and only in the browser where you\n\
                 asked for it.\n\n\
                 Did you not ask for this? Then you can ignore this message.\n\n\
                 -- \n\
                 This is an automated message from Nazorg.\n"
            ),
        ),
    }
}

/// The workspace address of an item: `base_url` + `/team/…` + pseudonymous reference.
pub fn url(base_url: &str, path: &str) -> String {
    format!("{}{path}", base_url.trim_end_matches('/'))
}

/// Puts the link to the item into a rendered body, just above the signature.
pub fn with_link(lang: Language, body: &str, url: &str) -> String {
    let block = match lang {
        Language::Nl => format!("In de Nazorg-werkplek (na aanmelden):\n    {url}\n"),
        Language::En => format!("In the Nazorg workspace (after signing in):\n    {url}\n"),
    };
    insert_block(body, &block)
}

/// Puts a list of links (digest lines) into a rendered body, above the signature.
pub fn with_links(lang: Language, body: &str, links: &[(String, String)]) -> String {
    let mut block = match lang {
        Language::Nl => "In de Nazorg-werkplek (na aanmelden):\n".to_string(),
        Language::En => "In the Nazorg workspace (after signing in):\n".to_string(),
    };
    for (label, url) in links {
        block.push_str(&format!("  {label:<8} {url}\n"));
    }
    insert_block(body, &block)
}

fn insert_block(body: &str, block: &str) -> String {
    match body.find("\n-- \n") {
        Some(i) => format!("{}\n{block}{}", &body[..=i], &body[i..]),
        None => format!("{body}\n{block}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_goes_above_the_signature() {
        let b = with_link(
            Language::Nl,
            "Tekst.\n\n-- \nNazorg\n",
            "http://x/team/checkins/C-1",
        );
        let link = b.find("http://x/team/checkins/C-1");
        let sig = b.find("\n-- \n");
        assert!(link.is_some() && sig.is_some() && link < sig, "{b}");
        let (s, body) = signin_link(Language::En, "http://x/team/signin/abc");
        assert!(s.contains("sign-in") && body.contains("http://x/team/signin/abc"));
    }
}
