//! Plain-text reminder templates, Dutch (default) and English.
//!
//! Templates only ever see pseudonymous references, codes and dates
//! ([`ReminderFacts`] has no field that could hold a name or address).

use super::Language;

/// Which reminder to render.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReminderKind {
    /// Advance notice: a check-in is coming up.
    Upcoming,
    /// The check-in is due now.
    Due,
    /// The due time has passed and no outcome was recorded.
    Overdue,
    /// Sent to the region coordinator (Veilig Thuis) after repeated overdue reminders.
    Escalation,
}

impl ReminderKind {
    pub fn code(&self) -> &'static str {
        match self {
            ReminderKind::Upcoming => "upcoming",
            ReminderKind::Due => "due",
            ReminderKind::Overdue => "overdue",
            ReminderKind::Escalation => "escalation",
        }
    }
}

/// Everything a reminder may mention. Deliberately no personal data.
#[derive(Clone, Copy, Debug)]
pub struct ReminderFacts<'a> {
    /// Pseudonymous family reference, e.g. `F-7Q2K9X`.
    pub family: &'a str,
    /// Check-in id.
    pub checkin: &'a str,
    /// 1-based index of the check-in in the plan.
    pub wave: u32,
    pub plan: &'a str,
    pub municipality_code: &'a str,
    pub municipality_name: &'a str,
    /// Preformatted, e.g. `2027-01-15 09:00 (Europe/Amsterdam)`.
    pub due_local: &'a str,
    /// Language to use when contacting the family, e.g. `nl`, `ar`.
    pub contact_language: &'a str,
    pub interpreter_needed: bool,
    /// Which overdue reminder this is (1..) for `Overdue`; total sent for `Escalation`.
    pub overdue_count: u32,
}

impl ReminderFacts<'_> {
    /// The date part of `due_local` (everything before the first space).
    fn due_date(&self) -> &str {
        self.due_local
            .split_whitespace()
            .next()
            .unwrap_or(self.due_local)
    }
}

/// Render a reminder: `(subject, body)`.
pub fn reminder(kind: ReminderKind, lang: Language, f: &ReminderFacts) -> (String, String) {
    match lang {
        Language::Nl => nl(kind, f),
        Language::En => en(kind, f),
    }
}

fn nl(kind: ReminderKind, f: &ReminderFacts) -> (String, String) {
    let fam = f.family;
    let date = f.due_date();
    let subject = match kind {
        ReminderKind::Upcoming => format!("[Nazorg] Contactmoment {fam} gepland op {date}"),
        ReminderKind::Due => {
            format!("[Nazorg] Contactmoment {fam} staat nu open (gepland op {date})")
        }
        ReminderKind::Overdue => format!(
            "[Nazorg] Herinnering {n}: contactmoment {fam} van {date} nog niet vastgelegd",
            n = f.overdue_count
        ),
        ReminderKind::Escalation => {
            format!("[Nazorg] Escalatie: contactmoment {fam} van {date} niet vastgelegd")
        }
    };

    let team = format!(
        "het wijkteam van gemeente {} (gemeentecode {})",
        f.municipality_name, f.municipality_code
    );
    let addressee = match kind {
        ReminderKind::Escalation => "de regiecoördinator nazorg, Veilig Thuis".to_owned(),
        _ => team.clone(),
    };
    let intro = match kind {
        ReminderKind::Upcoming => {
            "Binnenkort staat er een contactmoment in het kader van de nazorg gepland.\n\
             Wilt u dit contact alvast inplannen?"
                .to_owned()
        }
        ReminderKind::Due => {
            "Het onderstaande contactmoment in het kader van de nazorg staat nu open.\n\
             Wilt u contact opnemen met het gezin?"
                .to_owned()
        }
        ReminderKind::Overdue => format!(
            "De geplande datum van het onderstaande contactmoment is verstreken en er is nog\n\
             geen uitkomst vastgelegd in Nazorg. Dit is herinnering {n} na de geplande datum.",
            n = f.overdue_count
        ),
        ReminderKind::Escalation => format!(
            "Het wijkteam van gemeente {name} (gemeentecode {code}) heeft het onderstaande\n\
             contactmoment na {n} keer herinneren nog niet vastgelegd in Nazorg.\n\
             Wilt u dit opvolgen met het wijkteam?",
            name = f.municipality_name,
            code = f.municipality_code,
            n = f.overdue_count,
        ),
    };
    let tolk = if f.interpreter_needed { "ja" } else { "nee" };
    let mut facts = format!(
        "Gezin (referentie):   {fam}\n\
         Contactmoment:        {checkin} (ronde {wave} van plan {plan})\n\
         Gepland op:           {due}\n\
         Taal voor contact:    {taal}\n\
         Tolk nodig:           {tolk}\n",
        checkin = f.checkin,
        wave = f.wave,
        plan = f.plan,
        due = f.due_local,
        taal = f.contact_language,
    );
    if kind == ReminderKind::Escalation {
        facts.push_str(&format!(
            "Verantwoordelijk:     {team}\n\
             Herinneringen:        {n} verstuurd\n",
            n = f.overdue_count
        ));
    }
    let steps = match kind {
        ReminderKind::Escalation => format!(
            "Wat vragen wij van u?\n\
             1. Neem contact op met het verantwoordelijke wijkteam (zie hierboven) en ga na\n\
             \x20  of het contactmoment heeft plaatsgevonden en of het gezin bereikt is.\n\
             2. Zorg dat de uitkomst alsnog wordt vastgelegd, ook als het gezin niet\n\
             \x20  bereikt is: niet bereikt is ook informatie. Het wijkteam gebruikt hiervoor:\n\
             \n\
             \x20      nazorg checkin record --file FILE.json\n\
             \x20      (met \"checkin\": \"{checkin}\")\n\
             \n\
             3. Beoordeel of er aanleiding is voor verdere actie vanuit Veilig Thuis.\n",
            checkin = f.checkin
        ),
        _ => format!(
            "Wat vragen wij van u?\n\
             1. Neem contact op met het gezin: een huisbezoek, telefonisch, via\n\
             \x20  beeldbellen of op een andere passende manier.\n\
             2. Leg de uitkomst vast in Nazorg, ook als het gezin niet bereikt is:\n\
             \x20  niet bereikt is ook informatie. Gebruik hiervoor:\n\
             \n\
             \x20      nazorg checkin record --file FILE.json\n\
             \x20      (met \"checkin\": \"{checkin}\")\n",
            checkin = f.checkin
        ),
    };
    let footer = "-- \n\
                  Dit bericht bevat bewust geen persoonsgegevens. Alle gegevens van het gezin\n\
                  vindt u in Nazorg onder de referentie hierboven.\n\
                  Dit is een automatisch bericht van Nazorg.\n";
    let body = format!("Aan: {addressee}\n\n{intro}\n\n{facts}\n{steps}\n{footer}");
    (subject, body)
}

fn en(kind: ReminderKind, f: &ReminderFacts) -> (String, String) {
    let fam = f.family;
    let date = f.due_date();
    let subject = match kind {
        ReminderKind::Upcoming => format!("[Nazorg] Check-in {fam} coming up on {date}"),
        ReminderKind::Due => format!("[Nazorg] Check-in {fam} due {date}"),
        ReminderKind::Overdue => format!(
            "[Nazorg] Reminder {n}: check-in {fam} due {date} not yet recorded",
            n = f.overdue_count
        ),
        ReminderKind::Escalation => {
            format!("[Nazorg] Escalation: check-in {fam} due {date} not recorded")
        }
    };

    let team = format!(
        "the municipal team (wijkteam) of {} (municipality code {})",
        f.municipality_name, f.municipality_code
    );
    let addressee = match kind {
        ReminderKind::Escalation => "the regional aftercare coordinator, Veilig Thuis".to_owned(),
        _ => team.clone(),
    };
    let plural = if f.overdue_count == 1 { "" } else { "s" };
    let intro = match kind {
        ReminderKind::Upcoming => "An aftercare check-in is coming up soon.\n\
             Please schedule the contact in advance."
            .to_owned(),
        ReminderKind::Due => "The aftercare check-in below is due now.\n\
             Please contact the family."
            .to_owned(),
        ReminderKind::Overdue => format!(
            "The due date of the check-in below has passed and no outcome has been\n\
             recorded in Nazorg yet. This is reminder {n} after the due date.",
            n = f.overdue_count
        ),
        ReminderKind::Escalation => format!(
            "The municipal team of {name} (municipality code {code}) has not recorded\n\
             the check-in below in Nazorg after {n} reminder{plural}.\n\
             Please follow this up with the team.",
            name = f.municipality_name,
            code = f.municipality_code,
            n = f.overdue_count,
        ),
    };
    let interpreter = if f.interpreter_needed { "yes" } else { "no" };
    let mut facts = format!(
        "Family (reference):   {fam}\n\
         Check-in:             {checkin} (wave {wave} of plan {plan})\n\
         Due:                  {due}\n\
         Contact language:     {lang}\n\
         Interpreter needed:   {interpreter}\n",
        checkin = f.checkin,
        wave = f.wave,
        plan = f.plan,
        due = f.due_local,
        lang = f.contact_language,
    );
    if kind == ReminderKind::Escalation {
        facts.push_str(&format!(
            "Responsible:          {team}\n\
             Reminders sent:       {n}\n",
            n = f.overdue_count
        ));
    }
    let steps = match kind {
        ReminderKind::Escalation => format!(
            "What we ask of you\n\
             1. Contact the responsible municipal team (see above) and find out whether\n\
             \x20  the check-in took place and whether the family was reached.\n\
             2. Make sure the outcome is recorded, even if the family was not reached:\n\
             \x20  not reaching the family is information too. The team uses:\n\
             \n\
             \x20      nazorg checkin record --file FILE.json\n\
             \x20      (with \"checkin\": \"{checkin}\")\n\
             \n\
             3. Assess whether further action by Veilig Thuis is needed.\n",
            checkin = f.checkin
        ),
        _ => format!(
            "What we ask of you\n\
             1. Contact the family: a home visit, by phone, by video call or in\n\
             \x20  another suitable way.\n\
             2. Record the outcome in Nazorg, even if the family was not reached:\n\
             \x20  not reaching the family is information too. Use:\n\
             \n\
             \x20      nazorg checkin record --file FILE.json\n\
             \x20      (with \"checkin\": \"{checkin}\")\n",
            checkin = f.checkin
        ),
    };
    let footer = "-- \n\
                  This message deliberately contains no personal data. All details about\n\
                  the family are in Nazorg under the reference above.\n\
                  This is an automated message from Nazorg.\n";
    let body = format!("To: {addressee}\n\n{intro}\n\n{facts}\n{steps}\n{footer}");
    (subject, body)
}

// ---- handovers -----------------------------------------------------------------------------

/// Which handover message to render.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HandoverMail {
    /// To the receiving team: take the family over, dossier attached (or withheld).
    Handover,
    /// To the sending team: the handover was registered; you stay informed until it is
    /// acknowledged.
    Notice,
    /// To the receiving team: not acknowledged after `handover.remind_after` working days.
    Reminder,
    /// To the receiving municipality's coordinator and the sending team: not acknowledged
    /// after `handover.escalate_after` working days.
    Escalation,
}

impl HandoverMail {
    pub fn code(&self) -> &'static str {
        match self {
            HandoverMail::Handover => "handover",
            HandoverMail::Notice => "handover_notice",
            HandoverMail::Reminder => "handover_reminder",
            HandoverMail::Escalation => "handover_escalation",
        }
    }
}

/// Everything a handover message may mention. Deliberately no personal data: references,
/// codes, team addresses, dates and counts.
#[derive(Clone, Copy, Debug)]
pub struct HandoverFacts<'a> {
    /// Handover id, e.g. `H-7Q2K9XM4`.
    pub handover: &'a str,
    pub family: &'a str,
    /// A new case director within one municipality instead of a move.
    pub reassign: bool,
    pub from_code: &'a str,
    pub from_name: &'a str,
    /// The sending team's address: the contact for questions.
    pub from_team_email: &'a str,
    pub to_code: &'a str,
    pub to_name: &'a str,
    /// `YYYY-MM-DD`: from when the receiving team is responsible.
    pub effective_date: &'a str,
    pub children: usize,
    /// Preformatted local due time of the next open check-in.
    pub next_checkin_due: Option<&'a str>,
    /// Open flags counted per severity, e.g. `[("high", 1)]`.
    pub flags_by_severity: &'a [(String, usize)],
    /// `Some(file name)` when the dossier is attached; `None` when it was withheld.
    pub dossier_file: Option<&'a str>,
    /// `YYYY-MM-DD` the handover was registered.
    pub registered: &'a str,
    /// Working days waited, for reminders and escalations.
    pub working_days: u32,
}

/// Render a handover message: `(subject, body)`.
pub fn handover(kind: HandoverMail, lang: Language, f: &HandoverFacts) -> (String, String) {
    match lang {
        Language::Nl => handover_nl(kind, f),
        Language::En => handover_en(kind, f),
    }
}

fn flags_line(f: &HandoverFacts, none: &str) -> String {
    if f.flags_by_severity.is_empty() {
        return none.to_owned();
    }
    f.flags_by_severity
        .iter()
        .map(|(sev, n)| format!("{sev}: {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn handover_nl(kind: HandoverMail, f: &HandoverFacts) -> (String, String) {
    let fam = f.family;
    let what = if f.reassign {
        "Nieuwe regievoerder"
    } else {
        "Overdracht"
    };
    let subject = match kind {
        HandoverMail::Handover => format!(
            "[Nazorg] {what} gezin {fam}: {to} verantwoordelijk per {d}",
            to = f.to_name,
            d = f.effective_date
        ),
        HandoverMail::Notice => format!(
            "[Nazorg] {what} gezin {fam} naar {to} geregistreerd",
            to = f.to_name
        ),
        HandoverMail::Reminder => {
            format!("[Nazorg] Herinnering: {what} gezin {fam} nog niet bevestigd")
        }
        HandoverMail::Escalation => {
            format!("[Nazorg] Escalatie: {what} gezin {fam} niet bevestigd")
        }
    };
    let addressee = match kind {
        HandoverMail::Handover | HandoverMail::Reminder => format!(
            "het wijkteam van gemeente {} (gemeentecode {})",
            f.to_name, f.to_code
        ),
        HandoverMail::Notice => format!(
            "het wijkteam van gemeente {} (gemeentecode {})",
            f.from_name, f.from_code
        ),
        HandoverMail::Escalation => format!(
            "de regiecoördinator nazorg van gemeente {} en het wijkteam van gemeente {}",
            f.to_name, f.from_name
        ),
    };
    let intro = match (kind, f.reassign) {
        (HandoverMail::Handover, false) => format!(
            "Een gezin in nazorg verhuist naar uw gemeente. Vanaf {d} is uw team\n\
             verantwoordelijk voor het hele gezin: alle gezinsleden, het plan, de\n\
             contactmomenten en de open signalen.",
            d = f.effective_date
        ),
        (HandoverMail::Handover, true) => {
            "Het gezin hieronder heeft een nieuwe regievoerder binnen uw team.\n\
             Het dossier gaat mee, zodat wat bekend is niet verloren gaat."
                .to_owned()
        }
        (HandoverMail::Notice, _) => format!(
            "De overdracht hieronder is geregistreerd. Tot het ontvangende team de\n\
             overdracht bevestigt, ontvangt u een kopie van de herinneringen voor dit gezin.\n\
             Het ontvangende team kan u bereiken op {}.",
            f.from_team_email
        ),
        (HandoverMail::Reminder, _) => format!(
            "De overdracht hieronder is na {n} werkdagen nog niet bevestigd.\n\
             Wilt u de overdracht bevestigen?",
            n = f.working_days
        ),
        (HandoverMail::Escalation, _) => format!(
            "De overdracht hieronder is na {n} werkdagen nog niet bevestigd door het\n\
             ontvangende wijkteam. Wilt u zorgen dat het gezin niet tussen twee teams valt?",
            n = f.working_days
        ),
    };
    let next = f.next_checkin_due.unwrap_or("geen");
    let dossier = match f.dossier_file {
        Some(file) => format!(
            "bijgevoegd als {file} (versleuteld met age voor het ontvangende team;\n\
             \x20                     openen met: age -d -i TEAMSLEUTEL {file})"
        ),
        None => "ACHTERGEHOUDEN: voor de ontvangende gemeente is geen age-sleutel\n\
                 \x20                     ingesteld. De beheerder is gewaarschuwd; vraag het dossier bij hem op."
            .to_owned(),
    };
    let facts = format!(
        "Overdracht:           {h}\n\
         Gezin (referentie):   {fam}\n\
         Van:                  gemeente {fname} ({fcode}), contact {fmail}\n\
         Naar:                 gemeente {tname} ({tcode})\n\
         Verantwoordelijk per: {d}\n\
         Geregistreerd op:     {reg}\n\
         Aantal kinderen:      {kids}\n\
         Volgend contact:      {next}\n\
         Open signalen:        {flags}\n\
         Dossier:              {dossier}\n",
        h = f.handover,
        fname = f.from_name,
        fcode = f.from_code,
        fmail = f.from_team_email,
        tname = f.to_name,
        tcode = f.to_code,
        d = f.effective_date,
        reg = f.registered,
        kids = f.children,
        flags = flags_line(f, "geen"),
    );
    let steps = format!(
        "Bevestigen doet het ontvangende team met:\n\
         \n\
         \x20      nazorg handover ack {h} --municipality {tcode}\n\
         \n\
         Zonder bevestiging volgt na enkele werkdagen een herinnering en daarna een\n\
         escalatie naar de regiecoördinator.\n",
        h = f.handover,
        tcode = f.to_code
    );
    let footer = "-- \n\
                  Dit bericht bevat bewust geen persoonsgegevens. De gegevens van het gezin\n\
                  staan alleen in het versleutelde dossier en in Nazorg.\n\
                  Dit is een automatisch bericht van Nazorg.\n";
    let body = format!("Aan: {addressee}\n\n{intro}\n\n{facts}\n{steps}\n{footer}");
    (subject, body)
}

fn handover_en(kind: HandoverMail, f: &HandoverFacts) -> (String, String) {
    let fam = f.family;
    let what = if f.reassign {
        "new case director for family"
    } else {
        "handover of family"
    };
    let subject = match kind {
        HandoverMail::Handover if f.reassign => {
            format!("[Nazorg] New case director for family {fam}")
        }
        HandoverMail::Handover => format!(
            "[Nazorg] Handover of family {fam}: {to} responsible from {d}",
            to = f.to_name,
            d = f.effective_date
        ),
        HandoverMail::Notice => format!(
            "[Nazorg] Handover of family {fam} to {to} registered",
            to = f.to_name
        ),
        HandoverMail::Reminder => {
            format!("[Nazorg] Reminder: {what} {fam} not yet acknowledged")
        }
        HandoverMail::Escalation => {
            format!("[Nazorg] Escalation: {what} {fam} not acknowledged")
        }
    };
    let addressee = match kind {
        HandoverMail::Handover | HandoverMail::Reminder => format!(
            "the municipal team (wijkteam) of {} (municipality code {})",
            f.to_name, f.to_code
        ),
        HandoverMail::Notice => format!(
            "the municipal team (wijkteam) of {} (municipality code {})",
            f.from_name, f.from_code
        ),
        HandoverMail::Escalation => format!(
            "the regional aftercare coordinator for {} and the municipal team of {}",
            f.to_name, f.from_name
        ),
    };
    let intro = match (kind, f.reassign) {
        (HandoverMail::Handover, false) => format!(
            "A family in aftercare is moving to your municipality. From {d} your team is\n\
             responsible for the whole family: all members, the plan, the check-ins and\n\
             the open flags.",
            d = f.effective_date
        ),
        (HandoverMail::Handover, true) => {
            "The family below has a new case director within your team.\n\
             The dossier goes along, so what is known is not lost."
                .to_owned()
        }
        (HandoverMail::Notice, _) => format!(
            "The handover below has been registered. Until the receiving team acknowledges\n\
             it, you receive copies of the reminders for this family.\n\
             The receiving team can reach you at {}.",
            f.from_team_email
        ),
        (HandoverMail::Reminder, _) => format!(
            "The handover below has not been acknowledged after {n} working days.\n\
             Please acknowledge it.",
            n = f.working_days
        ),
        (HandoverMail::Escalation, _) => format!(
            "The handover below has not been acknowledged by the receiving team after\n\
             {n} working days. Please make sure the family does not fall between two teams.",
            n = f.working_days
        ),
    };
    let next = f.next_checkin_due.unwrap_or("none");
    let dossier = match f.dossier_file {
        Some(file) => format!(
            "attached as {file} (encrypted with age for the receiving team;\n\
             \x20                     open with: age -d -i TEAM_IDENTITY {file})"
        ),
        None => "WITHHELD: the receiving municipality has no age recipient configured.\n\
                 \x20                     The operator has been alerted; ask them for the dossier."
            .to_owned(),
    };
    let facts = format!(
        "Handover:             {h}\n\
         Family (reference):   {fam}\n\
         From:                 {fname} ({fcode}), contact {fmail}\n\
         To:                   {tname} ({tcode})\n\
         Responsible from:     {d}\n\
         Registered:           {reg}\n\
         Children:             {kids}\n\
         Next check-in due:    {next}\n\
         Open flags:           {flags}\n\
         Dossier:              {dossier}\n",
        h = f.handover,
        fname = f.from_name,
        fcode = f.from_code,
        fmail = f.from_team_email,
        tname = f.to_name,
        tcode = f.to_code,
        d = f.effective_date,
        reg = f.registered,
        kids = f.children,
        flags = flags_line(f, "none"),
    );
    let steps = format!(
        "The receiving team acknowledges with:\n\
         \n\
         \x20      nazorg handover ack {h} --municipality {tcode}\n\
         \n\
         Without acknowledgement a reminder follows after a few working days, then an\n\
         escalation to the regional coordinator.\n",
        h = f.handover,
        tcode = f.to_code
    );
    let footer = "-- \n\
                  This message deliberately contains no personal data. The family's details\n\
                  are only in the encrypted dossier and in Nazorg.\n\
                  This is an automated message from Nazorg.\n";
    let body = format!("To: {addressee}\n\n{intro}\n\n{facts}\n{steps}\n{footer}");
    (subject, body)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    const KINDS: [ReminderKind; 4] = [
        ReminderKind::Upcoming,
        ReminderKind::Due,
        ReminderKind::Overdue,
        ReminderKind::Escalation,
    ];

    fn facts() -> ReminderFacts<'static> {
        ReminderFacts {
            family: "F-7Q2K9X",
            checkin: "C-3H8M2P",
            wave: 2,
            plan: "standaard-12m",
            municipality_code: "GM0363",
            municipality_name: "Amsterdam",
            due_local: "2027-01-15 09:00 (Europe/Amsterdam)",
            contact_language: "ar",
            interpreter_needed: true,
            overdue_count: 3,
        }
    }

    #[test]
    fn codes() {
        let codes: Vec<_> = KINDS.iter().map(ReminderKind::code).collect();
        assert_eq!(codes, ["upcoming", "due", "overdue", "escalation"]);
    }

    #[test]
    fn all_templates_have_the_facts_and_no_placeholders() {
        let f = facts();
        for lang in [Language::Nl, Language::En] {
            for kind in KINDS {
                let (subject, body) = reminder(kind, lang, &f);
                let ctx = format!("{lang:?}/{kind:?}:\n{subject}\n{body}");
                assert!(subject.starts_with("[Nazorg] "), "{ctx}");
                assert!(subject.contains("F-7Q2K9X"), "{ctx}");
                assert!(subject.contains("2027-01-15"), "{ctx}");
                assert!(!subject.contains('\n'), "{ctx}");
                assert!(body.contains("F-7Q2K9X"), "{ctx}");
                assert!(body.contains("C-3H8M2P"), "{ctx}");
                assert!(
                    body.contains("2027-01-15 09:00 (Europe/Amsterdam)"),
                    "{ctx}"
                );
                assert!(body.contains("\"checkin\": \"C-3H8M2P\""), "{ctx}");
                assert!(body.contains("standaard-12m"), "{ctx}");
                assert!(
                    body.contains("Amsterdam") && body.contains("GM0363"),
                    "{ctx}"
                );
                for s in [&subject, &body] {
                    assert!(!s.contains('{') && !s.contains('}'), "{ctx}");
                }
            }
        }
    }

    #[test]
    fn dutch_wording() {
        let f = facts();
        let (subject, body) = reminder(ReminderKind::Upcoming, Language::Nl, &f);
        assert_eq!(
            subject,
            "[Nazorg] Contactmoment F-7Q2K9X gepland op 2027-01-15"
        );
        assert!(
            body.contains("Aan: het wijkteam van gemeente Amsterdam"),
            "{body}"
        );
        assert!(body.contains("Tolk nodig:           ja"), "{body}");
        assert!(body.contains("Taal voor contact:    ar"), "{body}");
        assert!(body.contains("ronde 2 van plan standaard-12m"), "{body}");
        assert!(body.contains("niet bereikt is ook informatie"), "{body}");
        assert!(body.contains("huisbezoek"), "{body}");
        assert!(body.contains("bewust geen persoonsgegevens"), "{body}");

        let (subject, body) = reminder(ReminderKind::Overdue, Language::Nl, &f);
        assert!(subject.contains("Herinnering 3"), "{subject}");
        assert!(
            body.contains("herinnering 3 na de geplande datum"),
            "{body}"
        );

        let (subject, body) = reminder(ReminderKind::Escalation, Language::Nl, &f);
        assert!(subject.starts_with("[Nazorg] Escalatie"), "{subject}");
        assert!(
            body.contains("Aan: de regiecoördinator nazorg, Veilig Thuis"),
            "{body}"
        );
        assert!(body.contains("na 3 keer herinneren"), "{body}");
    }

    #[test]
    fn english_wording() {
        let mut f = facts();
        f.interpreter_needed = false;
        let (subject, body) = reminder(ReminderKind::Due, Language::En, &f);
        assert_eq!(subject, "[Nazorg] Check-in F-7Q2K9X due 2027-01-15");
        assert!(body.contains("Interpreter needed:   no"), "{body}");
        assert!(body.contains("wave 2 of plan standaard-12m"), "{body}");
        assert!(
            body.contains("deliberately contains no personal data"),
            "{body}"
        );
        f.overdue_count = 1;
        let (_, body) = reminder(ReminderKind::Escalation, Language::En, &f);
        assert!(body.contains("after 1 reminder.\n"), "{body}");
    }

    #[test]
    fn default_language_is_dutch() {
        assert_eq!(Language::default(), Language::Nl);
        assert_eq!(serde_json::to_string(&Language::En).unwrap(), "\"en\"");
        assert_eq!(
            serde_json::from_str::<Language>("\"nl\"").unwrap(),
            Language::Nl
        );
    }

    #[test]
    fn handover_templates_have_the_facts_and_no_placeholders() {
        let flags = vec![("high".to_string(), 1usize)];
        for dossier in [Some("dossier-F-7Q2K9X.age"), None] {
            let f = HandoverFacts {
                handover: "H-ABCDEFGH",
                family: "F-7Q2K9X",
                reassign: false,
                from_code: "GM0363",
                from_name: "Amsterdam",
                from_team_email: "wijkteam@amsterdam.example.org",
                to_code: "GM0599",
                to_name: "Rotterdam",
                effective_date: "2027-03-01",
                children: 2,
                next_checkin_due: Some("2027-03-15 09:00 (Europe/Amsterdam)"),
                flags_by_severity: &flags,
                dossier_file: dossier,
                registered: "2027-02-20",
                working_days: 2,
            };
            for lang in [Language::Nl, Language::En] {
                for kind in [
                    HandoverMail::Handover,
                    HandoverMail::Notice,
                    HandoverMail::Reminder,
                    HandoverMail::Escalation,
                ] {
                    let (subject, body) = handover(kind, lang, &f);
                    let ctx = format!("{lang:?}/{kind:?}:\n{subject}\n{body}");
                    assert!(subject.starts_with("[Nazorg] ") && subject.contains("F-7Q2K9X"));
                    assert!(!subject.contains('\n'), "{ctx}");
                    for needle in [
                        "H-ABCDEFGH",
                        "2027-03-01",
                        "GM0599",
                        "wijkteam@amsterdam.example.org",
                        "2027-03-15 09:00",
                        "high: 1",
                        "nazorg handover ack H-ABCDEFGH --municipality GM0599",
                    ] {
                        assert!(body.contains(needle), "{needle} missing in {ctx}");
                    }
                    assert_eq!(
                        body.contains("dossier-F-7Q2K9X.age"),
                        dossier.is_some(),
                        "{ctx}"
                    );
                    assert!(!body.contains('{') && !body.contains('}'), "{ctx}");
                }
            }
        }
    }
}
