//! The pages' templates (askama, compiled into the binary from `templates/web/`) and the
//! plain values they show. Templates escape everything; only the server-drawn SVG
//! timelines (numbers and escaped labels) are inserted as markup.

use super::i18n::T;
use askama::Template;

/// What every page's frame needs.
pub struct Layout {
    pub t: T,
    pub title: String,
    pub signed_in: bool,
    pub csrf: String,
    pub member_name: String,
    pub municipality: String,
    /// The same page in the other language.
    pub switch_href: String,
    /// Go on to this page at once (after sign-in).
    pub refresh: Option<String>,
}

/// One wrong field, for the error summary at the top of a form.
pub struct FormError {
    pub id: String,
    pub label: String,
    pub message: String,
}

#[derive(Template)]
#[template(path = "web/message.html")]
pub struct MessagePage {
    pub l: Layout,
    pub body: String,
    pub link: Option<(String, String)>,
}

#[derive(Template)]
#[template(path = "web/signin.html")]
pub struct SignInPage {
    pub l: Layout,
    pub csrf: String,
    pub next: String,
    pub email: String,
    pub email_error: Option<String>,
    pub errors: Vec<FormError>,
}

pub struct CaseRow {
    pub family: String,
    pub director: String,
    /// The team's own case number (empty if none).
    pub case_number: String,
    pub checkin: Option<String>,
    pub due: String,
    pub due_at: i64,
    /// Failed attempts so far at the next contact, "1 van 3" (empty without one).
    pub attempts: String,
    pub state: &'static str,
    pub state_label: &'static str,
    pub reminders: i64,
    pub red: i64,
    pub amber: i64,
    pub info: i64,
    pub handover: Option<String>,
    pub handover_label: &'static str,
    pub needs_action: bool,
}

#[derive(Template)]
#[template(path = "web/caseload.html")]
pub struct CaseloadPage {
    pub l: Layout,
    pub rows: Vec<CaseRow>,
    pub action_only: bool,
    pub sort: String,
    pub sorts: Vec<(&'static str, &'static str)>,
}

pub struct MemberVm {
    pub reference: String,
    pub name: String,
    pub role: String,
    pub birth: String,
    pub phone: String,
}

pub struct CheckinVm {
    pub id: String,
    pub wave: i64,
    pub due: String,
    pub status: String,
    pub outcome: String,
    pub reminders: String,
    pub open: bool,
}

pub struct TimelineVm {
    pub label: String,
    pub svg: String,
    pub values: String,
}

pub struct ChildVm {
    pub reference: String,
    pub name: String,
    pub lines: Vec<TimelineVm>,
}

pub struct FlagVm {
    pub id: i64,
    pub severity: String,
    pub severity_code: String,
    pub rule: String,
    pub child: String,
    pub status: String,
    pub status_code: String,
    pub raised: String,
    pub evidence: String,
    pub notes: Vec<(String, String)>,
}

pub struct HandoverVm {
    pub id: String,
    pub family: String,
    pub from: String,
    pub to: String,
    pub effective: String,
    pub status: String,
}

pub struct FamilyVm {
    pub reference: String,
    pub status: String,
    pub plan: String,
    pub municipality: String,
    pub language: String,
    pub interpreter: String,
    pub erased: bool,
    pub director: String,
    /// The reading team's own case number (empty if none).
    pub case_number: String,
    pub address: String,
    pub stressors: String,
    pub notes: String,
    pub members: Vec<MemberVm>,
    pub checkins: Vec<CheckinVm>,
    pub children: Vec<ChildVm>,
    pub flags: Vec<FlagVm>,
    pub handovers: Vec<HandoverVm>,
}

#[derive(Template)]
#[template(path = "web/family.html")]
pub struct FamilyPage {
    pub l: Layout,
    pub print: bool,
    pub f: FamilyVm,
    pub csrf: String,
    /// The responsible team may set its case number here.
    pub can_edit: bool,
    /// The case number as typed (when shown again with an error).
    pub case_number: String,
    pub case_error: Option<String>,
    pub errors: Vec<FormError>,
}

pub struct OptionVm {
    pub value: String,
    pub label: String,
    pub selected: bool,
}

/// One generated form field for an indicator.
pub struct FieldVm {
    pub id: String,
    pub name: String,
    pub label: String,
    /// `number`, `select` or `multi`.
    pub kind: &'static str,
    pub value: String,
    pub options: Vec<OptionVm>,
    pub error: Option<String>,
}

pub struct ChildFormVm {
    pub reference: String,
    pub name: String,
    pub fields: Vec<FieldVm>,
}

#[derive(Template)]
#[template(path = "web/record.html")]
pub struct RecordPage {
    pub l: Layout,
    pub csrf: String,
    pub checkin: String,
    pub family: String,
    pub due: String,
    pub at: String,
    pub at_error: Option<String>,
    pub outcomes: Vec<OptionVm>,
    pub outcome_error: Option<String>,
    pub modes: Vec<OptionVm>,
    pub mode_error: Option<String>,
    pub family_fields: Vec<FieldVm>,
    pub children: Vec<ChildFormVm>,
    pub notes: String,
    pub notes_error: Option<String>,
    pub errors: Vec<FormError>,
}

#[derive(Template)]
#[template(path = "web/flag.html")]
pub struct FlagPage {
    pub l: Layout,
    pub csrf: String,
    pub family: String,
    pub fl: FlagVm,
    pub can_act: bool,
    pub note: String,
    pub note_error: Option<String>,
    pub errors: Vec<FormError>,
}

#[derive(Template)]
#[template(path = "web/handover.html")]
pub struct HandoverPage {
    pub l: Layout,
    pub csrf: String,
    pub h: HandoverVm,
    pub can_ack: bool,
    pub is_sender: bool,
    pub by: String,
    pub by_error: Option<String>,
    pub errors: Vec<FormError>,
    pub dossier: Option<FamilyVm>,
    pub print: bool,
}
