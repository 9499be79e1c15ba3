//! The workspace's words in Dutch (default) and English. One table, so a missing
//! translation is found by the test below rather than by a team worker.

use crate::mail::Language;
use axum::http::HeaderMap;

/// The language of a page, with its words.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct T(pub Language);

const WORDS: &[(&str, &str, &str)] = &[
    ("skip", "Direct naar de inhoud", "Skip to content"),
    ("brand", "Nazorg werkplek", "Nazorg workspace"),
    ("nav", "Hoofdmenu", "Main menu"),
    ("nav.caseload", "Caseload", "Caseload"),
    ("signout", "Afmelden", "Sign out"),
    ("switch", "English", "Nederlands"),
    (
        "footer",
        "Nazorg na huiselijk geweld. Deze pagina's bevatten vertrouwelijke gegevens: deel ze niet buiten uw team.",
        "Aftercare after domestic violence. These pages hold confidential data: do not share them outside your team.",
    ),
    ("errors.title", "Er is een probleem", "There is a problem"),
    ("signin.title", "Aanmelden", "Sign in"),
    (
        "signin.intro",
        "Vul het e-mailadres in waarmee u bij Nazorg bent geregistreerd. U ontvangt een aanmeldlink die 15 minuten geldig is en alleen werkt in deze browser.",
        "Enter the email address you are registered with. You will receive a sign-in link that is valid for 15 minutes and works only in this browser.",
    ),
    ("signin.email", "E-mailadres", "Email address"),
    (
        "signin.submit",
        "Stuur mij een aanmeldlink",
        "Send me a sign-in link",
    ),
    (
        "signin.email.invalid",
        "Vul een geldig e-mailadres in, zoals naam@gemeente.nl",
        "Enter a valid email address, like name@municipality.nl",
    ),
    ("sent.title", "Kijk in uw e-mail", "Check your email"),
    (
        "sent.body",
        "Als dit adres bij Nazorg is geregistreerd, ontvangt u binnen enkele minuten een aanmeldlink. Open de link in deze browser; hij is 15 minuten geldig en werkt één keer.",
        "If this address is registered with Nazorg, you will receive a sign-in link within a few minutes. Open it in this browser; it is valid for 15 minutes and works once.",
    ),
    ("signedin.title", "U bent aangemeld", "You are signed in"),
    (
        "signedin.body",
        "U wordt doorgestuurd. Gebeurt dat niet, kies dan Doorgaan.",
        "You are being redirected. If nothing happens, choose Continue.",
    ),
    ("continue", "Doorgaan", "Continue"),
    (
        "link.used.title",
        "Deze aanmeldlink is al gebruikt",
        "This sign-in link has been used already",
    ),
    (
        "link.used.body",
        "Een aanmeldlink werkt maar één keer. Vraag een nieuwe link aan.",
        "A sign-in link works only once. Ask for a new link.",
    ),
    (
        "link.expired.title",
        "Deze aanmeldlink is verlopen",
        "This sign-in link has expired",
    ),
    (
        "link.expired.body",
        "Een aanmeldlink is 15 minuten geldig. Vraag een nieuwe link aan.",
        "A sign-in link is valid for 15 minutes. Ask for a new link.",
    ),
    (
        "link.browser.title",
        "Open de link in de browser waarin u hem aanvroeg",
        "Open the link in the browser where you asked for it",
    ),
    (
        "link.browser.body",
        "Om uw gegevens te beschermen werkt een aanmeldlink alleen in de browser waarin u hem hebt aangevraagd. Vraag hier een nieuwe link aan als dat niet lukt.",
        "To protect the data a sign-in link works only in the browser where you asked for it. Ask for a new link here if that is not possible.",
    ),
    (
        "link.unknown.title",
        "Deze aanmeldlink is niet geldig",
        "This sign-in link is not valid",
    ),
    (
        "link.new",
        "Nieuwe aanmeldlink aanvragen",
        "Ask for a new sign-in link",
    ),
    ("signedout.title", "U bent afgemeld", "You are signed out"),
    (
        "signedout.body",
        "Uw sessie is beëindigd. Sluit de browser als u een gedeelde computer gebruikt.",
        "Your session has ended. Close the browser if you use a shared computer.",
    ),
    ("signin.again", "Opnieuw aanmelden", "Sign in again"),
    ("notfound.title", "Pagina niet gevonden", "Page not found"),
    (
        "notfound.body",
        "Deze pagina bestaat niet of hoort niet bij uw team.",
        "This page does not exist or does not belong to your team.",
    ),
    ("forbidden.title", "Geen toegang", "No access"),
    (
        "forbidden.body",
        "Het formulier is verlopen of niet van deze site. Ga terug, laad de pagina opnieuw en probeer het nog eens.",
        "The form has expired or is not from this site. Go back, reload the page and try again.",
    ),
    (
        "notresponsible.body",
        "Alleen het team dat nu verantwoordelijk is voor dit gezin kan dit wijzigen. U kunt de gegevens wel inzien.",
        "Only the team responsible for this family now can change this. You can still read the record.",
    ),
    ("error.title", "Er ging iets mis", "Something went wrong"),
    ("limited.title", "Te veel verzoeken", "Too many requests"),
    (
        "limited.body",
        "Vanaf dit adres komen te veel verzoeken zonder aanmelding. Wacht even en probeer het dan opnieuw.",
        "Too many requests without sign-in come from this address. Wait a moment, then try again.",
    ),
    (
        "error.body",
        "Probeer het later opnieuw. De beheerder vindt de oorzaak in het logboek.",
        "Please try again later. The operator can find the cause in the log.",
    ),
    (
        "back.caseload",
        "Terug naar de caseload",
        "Back to the caseload",
    ),
    ("caseload.title", "Caseload", "Caseload"),
    (
        "caseload.intro",
        "Gezinnen waarvoor uw team verantwoordelijk is, of die naar uw gemeente verhuizen.",
        "Families your team is responsible for, or that are moving to your municipality.",
    ),
    ("caseload.filter", "Filter", "Filter"),
    ("caseload.all", "Alle gezinnen", "All families"),
    ("caseload.action", "Actie nodig", "Needs action"),
    ("caseload.sort", "Sorteren op", "Sort by"),
    ("caseload.apply", "Toepassen", "Apply"),
    (
        "caseload.none",
        "Er zijn geen gezinnen die aan het filter voldoen.",
        "No families match the filter.",
    ),
    ("caseload.family", "gezin", "family"),
    ("caseload.families", "gezinnen", "families"),
    ("caseload.of", "van", "of"),
    ("col.case_number", "Dossiernummer", "Case number"),
    ("col.attempts", "Pogingen", "Attempts"),
    ("col.family", "Gezin", "Family"),
    ("col.director", "Casusregisseur", "Case director"),
    ("col.next", "Volgend contact", "Next contact"),
    ("col.state", "Stand", "State"),
    ("col.reminders", "Herinneringen", "Reminders"),
    ("col.flags", "Open signalen", "Open flags"),
    ("col.handover", "Overdracht", "Handover"),
    ("sort.due", "Volgend contact", "Next contact"),
    ("sort.family", "Gezin", "Family"),
    ("sort.flags", "Signalen", "Flags"),
    ("state.upcoming", "Gepland", "Upcoming"),
    ("state.due", "Nu aan de beurt", "Due now"),
    ("state.overdue", "Te laat", "Overdue"),
    ("state.none", "Geen", "None"),
    (
        "outcome.overdue",
        "te laat, niet vastgelegd",
        "overdue, not recorded",
    ),
    ("outcome.pending", "nog open", "still open"),
    ("stressor.debts", "schulden", "debts"),
    ("stressor.housing", "huisvesting", "housing"),
    ("stressor.income", "inkomen", "income"),
    ("stressor.work", "werk", "work"),
    (
        "stressor.mental_health",
        "psychische gezondheid",
        "mental health",
    ),
    ("stressor.health", "gezondheid", "health"),
    ("stressor.addiction", "verslaving", "addiction"),
    ("stressor.legal", "juridische zaken", "legal matters"),
    (
        "stressor.isolation",
        "sociaal isolement",
        "social isolation",
    ),
    (
        "rule.measure_notice",
        "Maatregel (zoals een contactverbod) loopt binnenkort af",
        "A court measure (such as a contact ban) ends soon",
    ),
    ("sev.red", "rood", "red"),
    ("sev.amber", "oranje", "amber"),
    ("sev.info", "info", "info"),
    (
        "handover.incoming",
        "Verhuist naar uw gemeente",
        "Moving to your municipality",
    ),
    ("handover.pending", "In afwachting", "Pending"),
    ("family.title", "Gezin", "Family"),
    ("family.print", "Afdrukversie", "Print view"),
    ("family.overview", "Overzicht", "Overview"),
    ("family.status", "Status", "Status"),
    ("family.plan", "Plan", "Plan"),
    ("family.municipality", "Gemeente", "Municipality"),
    (
        "family.language",
        "Taal voor contact",
        "Language for contact",
    ),
    ("family.interpreter", "Tolk nodig", "Interpreter needed"),
    ("family.director", "Casusregisseur", "Case director"),
    (
        "family.case_number",
        "Dossiernummer van uw team",
        "Your team's case number",
    ),
    (
        "family.case_number.hint",
        "Het nummer van dit gezin in het eigen systeem van uw gemeente. Wordt versleuteld opgeslagen; laat leeg om het te verwijderen.",
        "This family's number in your municipality's own case system. Stored encrypted; leave empty to remove it.",
    ),
    (
        "family.case_number.save",
        "Dossiernummer opslaan",
        "Save the case number",
    ),
    (
        "family.case_number.done",
        "Het dossiernummer is opgeslagen",
        "The case number is saved",
    ),
    (
        "family.case_number.invalid",
        "Vul een dossiernummer in van hoogstens 64 tekens op één regel",
        "Enter a case number of at most 64 characters on one line",
    ),
    ("family.address", "Adres", "Address"),
    ("family.stressors", "Stressoren", "Stressors"),
    ("family.notes", "Notities", "Notes"),
    ("family.members", "Gezinsleden", "Members"),
    ("family.contacts", "Contactmomenten", "Check-ins"),
    (
        "family.children",
        "Kinderen: verloop per indicator",
        "Children: course per indicator",
    ),
    ("family.flags", "Signalen", "Flags"),
    ("family.handovers", "Overdrachten", "Handovers"),
    (
        "family.erased",
        "De gegevens van dit gezin zijn gewist.",
        "This family's data has been erased.",
    ),
    ("family.none", "Geen.", "None."),
    ("yes", "ja", "yes"),
    ("no", "nee", "no"),
    ("role.adult", "volwassene", "adult"),
    ("role.child", "kind", "child"),
    ("col.name", "Naam", "Name"),
    ("col.role", "Rol", "Role"),
    ("col.birth", "Geboortedatum", "Birth date"),
    ("col.phone", "Telefoon", "Phone"),
    ("col.ref", "Referentie", "Reference"),
    ("col.wave", "Ronde", "Round"),
    ("col.due", "Streefdatum", "Target date"),
    ("col.status", "Status", "Status"),
    ("col.outcome", "Uitkomst", "Outcome"),
    ("col.action", "Actie", "Action"),
    ("col.rule", "Regel", "Rule"),
    ("col.severity", "Ernst", "Severity"),
    ("col.raised", "Afgegeven", "Raised"),
    ("col.member", "Gezinslid", "Family member"),
    ("flag.whole_family", "Het hele gezin", "The whole family"),
    ("col.from", "Van", "From"),
    ("col.to", "Naar", "To"),
    ("col.effective", "Per", "From date"),
    ("record.link", "Contact vastleggen", "Record contact"),
    (
        "record.title",
        "Contactmoment vastleggen",
        "Record a check-in",
    ),
    (
        "record.intro",
        "Leg vast hoe het contact ging. Vul per kind in wat u zag; laat een veld leeg als het niet besproken is.",
        "Record how the contact went. Fill in what you saw per child; leave a field empty if it was not discussed.",
    ),
    (
        "record.at",
        "Datum en tijd van het contact",
        "Date and time of the contact",
    ),
    (
        "record.at.hint",
        "Bijvoorbeeld 2027-01-18T10:30",
        "For example 2027-01-18T10:30",
    ),
    ("record.outcome", "Uitkomst", "Outcome"),
    ("outcome.reached", "Bereikt", "Reached"),
    ("outcome.not_reached", "Niet bereikt", "Not reached"),
    (
        "outcome.declined",
        "Gezin wil geen contact",
        "Family declined",
    ),
    ("record.mode", "Soort contact", "Kind of contact"),
    ("mode.home_visit", "Huisbezoek", "Home visit"),
    ("mode.phone", "Telefoon", "Phone"),
    ("mode.video", "Beeldbellen", "Video call"),
    ("mode.office", "Op kantoor", "At the office"),
    ("mode.walk", "Wandelen", "Walk"),
    ("record.family", "Het gezin", "The family"),
    ("record.child", "Kind", "Child"),
    (
        "record.notes",
        "Notities (worden versleuteld opgeslagen)",
        "Notes (stored encrypted)",
    ),
    ("record.submit", "Contact vastleggen", "Record the contact"),
    ("record.unknown", "Niet besproken", "Not discussed"),
    (
        "record.done.title",
        "Het contact is vastgelegd",
        "The contact is recorded",
    ),
    (
        "record.done.body",
        "Er worden geen herinneringen meer gestuurd voor dit contactmoment.",
        "No more reminders will be sent for this check-in.",
    ),
    (
        "record.closed.title",
        "Dit contactmoment is al afgehandeld",
        "This check-in is dealt with already",
    ),
    ("record.to.family", "Naar het gezin", "To the family"),
    (
        "field.invalid",
        "Deze waarde is niet geldig",
        "This value is not valid",
    ),
    ("field.number", "Vul een getal in", "Enter a number"),
    ("field.required", "Maak een keuze", "Make a choice"),
    ("field.range", "Vul een getal in van", "Enter a number from"),
    ("field.to", "tot en met", "to"),
    (
        "field.whole",
        "Vul een heel getal in van 0 of meer",
        "Enter a whole number of 0 or more",
    ),
    (
        "field.datetime",
        "Vul datum en tijd in als JJJJ-MM-DDTUU:MM",
        "Enter date and time as YYYY-MM-DDTHH:MM",
    ),
    ("flag.title", "Signaal", "Flag"),
    ("flag.evidence", "Onderbouwing", "Evidence"),
    (
        "flag.note",
        "Notitie (wordt versleuteld opgeslagen)",
        "Note (stored encrypted)",
    ),
    (
        "flag.ack",
        "Bevestigen dat wij dit oppakken",
        "Acknowledge: we act on this",
    ),
    ("flag.resolve", "Afsluiten als opgelost", "Resolve"),
    ("flag.acknowledged", "Bevestigd", "Acknowledged"),
    ("flag.resolved", "Opgelost", "Resolved"),
    (
        "flag.done",
        "Het signaal is bijgewerkt",
        "The flag is updated",
    ),
    ("flag.note.required", "Vul een notitie in", "Enter a note"),
    ("flag.step", "Wat wilt u doen?", "What do you want to do?"),
    (
        "eval.title",
        "Evaluatie van het plan",
        "Evaluation of the plan",
    ),
    (
        "eval.intro",
        "Het plan van dit gezin is afgerond. Leg de korte evaluatie vast, bij voorkeur na het afsluitende gesprek met het gezin.",
        "This family's plan has ended. Record its short evaluation, preferably after the closing conversation with the family.",
    ),
    (
        "eval.safety",
        "Is de veiligheid verbeterd?",
        "Did safety improve?",
    ),
    ("eval.safety.yes", "Ja", "Yes"),
    ("eval.safety.partly", "Deels", "Partly"),
    ("eval.safety.no", "Nee", "No"),
    (
        "eval.safety.error",
        "Kies ja, deels of nee",
        "Choose yes, partly or no",
    ),
    (
        "eval.professionals",
        "Aantal professionals dat nu betrokken is",
        "Number of professionals involved now",
    ),
    (
        "eval.professionals.error",
        "Vul een heel getal van 0 tot en met 50 in",
        "Enter a whole number from 0 to 50",
    ),
    (
        "eval.view",
        "Hoe kijkt het gezin er zelf op terug? (niet verplicht)",
        "How does the family itself look back? (optional)",
    ),
    (
        "eval.submit",
        "Evaluatie vastleggen",
        "Record the evaluation",
    ),
    (
        "eval.done",
        "De evaluatie is vastgelegd",
        "The evaluation is recorded",
    ),
    (
        "eval.closed",
        "Voor dit gezin wordt nu geen evaluatie vastgelegd: het plan loopt nog, of de evaluatie is al vastgelegd.",
        "No evaluation is recorded for this family now: its plan is still running, or the evaluation is recorded already.",
    ),
    ("handover.title", "Overdracht", "Handover"),
    (
        "handover.intro",
        "Dit gezin verhuist naar uw gemeente. Lees het dossier hieronder en bevestig dat uw team de nazorg overneemt.",
        "This family is moving to your municipality. Read the dossier below and confirm that your team takes over the aftercare.",
    ),
    (
        "handover.by",
        "Uw naam (wordt versleuteld opgeslagen)",
        "Your name (stored encrypted)",
    ),
    (
        "handover.ack",
        "Bevestigen: wij nemen de nazorg over",
        "Acknowledge: we take over the aftercare",
    ),
    (
        "handover.done",
        "De overdracht is bevestigd",
        "The handover is acknowledged",
    ),
    ("handover.dossier", "Dossier", "Dossier"),
    (
        "handover.sender",
        "Alleen het ontvangende team kan de overdracht bevestigen.",
        "Only the receiving team can acknowledge the handover.",
    ),
    (
        "timeline.none",
        "Nog geen waarnemingen.",
        "No observations yet.",
    ),
    ("reminder.none", "geen", "none"),
    ("reminder.upcoming", "vooraankondiging", "advance notice"),
    ("reminder.due", "verstuurd", "sent"),
    ("reminder.escalated", "geëscaleerd", "escalated"),
    ("reminder.overdue", "herinnering", "reminder"),
    ("status.open", "open", "open"),
    ("status.recorded", "vastgelegd", "recorded"),
    ("status.cancelled", "vervallen", "cancelled"),
    ("status.lapsed", "verlopen", "lapsed"),
    ("status.missed", "gemist", "missed"),
    ("status.acknowledged", "bevestigd", "acknowledged"),
    ("status.resolved", "opgelost", "resolved"),
    ("status.pending", "in afwachting", "pending"),
    ("status.escalated", "geëscaleerd", "escalated"),
    ("status.superseded", "vervangen", "superseded"),
    ("status.running", "loopt", "running"),
    ("status.completed", "afgerond", "completed"),
    (
        "status.closed_early",
        "vroegtijdig gesloten",
        "closed early",
    ),
    ("status.erased", "gewist", "erased"),
];

/// The table by key, built once (pages look words up per row).
fn table() -> &'static std::collections::HashMap<&'static str, (&'static str, &'static str)> {
    static TABLE: std::sync::OnceLock<
        std::collections::HashMap<&'static str, (&'static str, &'static str)>,
    > = std::sync::OnceLock::new();
    TABLE.get_or_init(|| WORDS.iter().map(|(k, nl, en)| (*k, (*nl, *en))).collect())
}

impl T {
    /// The word for `key`; "?" if the table lacks it (a test keeps it complete).
    pub fn s(&self, key: &str) -> &'static str {
        self.word(key).unwrap_or("?")
    }

    /// The word for `key`, if the table has it.
    pub fn word(&self, key: &str) -> Option<&'static str> {
        table().get(key).map(|(nl, en)| match self.0 {
            Language::Nl => *nl,
            Language::En => *en,
        })
    }

    /// "1 gezin", "2 gezinnen": the count with the singular or plural word.
    pub fn count(&self, n: usize, one: &str, many: &str) -> String {
        format!("{n} {}", self.s(if n == 1 { one } else { many }))
    }

    /// `prefix.code` looked up, or the code itself when there is no word for it.
    pub fn code(&self, prefix: &str, code: &str) -> String {
        match self.word(&format!("{prefix}.{code}")) {
            Some(w) => w.to_string(),
            None => code.replace('_', " "),
        }
    }

    pub fn lang(&self) -> &'static str {
        self.0.code()
    }

    /// The other language, for the switch.
    pub fn other(&self) -> &'static str {
        match self.0 {
            Language::Nl => "en",
            Language::En => "nl",
        }
    }
}

/// The page language: `?lang=` first, then the `nz_lang` cookie, then the browser's
/// Accept-Language (English when it prefers English over Dutch), else Dutch.
pub fn pick(query_lang: Option<&str>, headers: &HeaderMap) -> T {
    if let Some(l) = query_lang.and_then(|l| l.parse().ok()) {
        return T(l);
    }
    if let Some(l) =
        super::session::cookie(headers, super::session::LANG_COOKIE).and_then(|l| l.parse().ok())
    {
        return T(l);
    }
    let accept = headers
        .get(axum::http::header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    for part in accept.split(',') {
        let tag = part
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        if tag.starts_with("nl") {
            return T(Language::Nl);
        }
        if tag.starts_with("en") {
            return T(Language::En);
        }
    }
    T(Language::Nl)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_word_is_there_in_both_languages_once() {
        let mut seen = std::collections::BTreeSet::new();
        for (k, nl, en) in WORDS {
            assert!(seen.insert(*k), "{k} twice");
            assert!(!nl.is_empty() && !en.is_empty(), "{k} empty");
        }
    }

    #[test]
    fn language_from_query_cookie_or_browser() {
        let mut h = HeaderMap::new();
        assert_eq!(pick(None, &h).0, Language::Nl);
        h.insert(
            axum::http::header::ACCEPT_LANGUAGE,
            axum::http::HeaderValue::from_static("en-GB,en;q=0.9,nl;q=0.5"),
        );
        assert_eq!(pick(None, &h).0, Language::En);
        assert_eq!(pick(Some("nl"), &h).0, Language::Nl);
    }
}
