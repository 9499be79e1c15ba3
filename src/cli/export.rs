//! `nazorg export`: the anonymised research export.

use super::*;

/// Writes a research export (`nazorg export`).
pub async fn run(
    g: &Global,
    out: Option<PathBuf>,
    study: Option<String>,
    from: Option<String>,
    to: Option<String>,
    k: Option<u32>,
) -> anyhow::Result<()> {
    let date = |name: &str, v: Option<String>| -> anyhow::Result<Option<chrono::NaiveDate>> {
        match v {
            None => Ok(None),
            Some(s) => chrono::NaiveDate::parse_from_str(&s, "%Y-%m-%d")
                .map(Some)
                .map_err(|_| {
                    error_out!("{name}: expected a date YYYY-MM-DD");
                    Exit(exit::DATAERR).into()
                }),
        }
    };
    let from = date("from", from)?;
    let to = date("to", to)?;
    let app = open_app(g, OpenMode::Existing, false).await?;
    // Without --out the export goes where the sweep expires it after export.keep:
    // staged under a temporary name, then moved to its id.
    let (out_path, kept) = match out {
        Some(o) => (o, None),
        None => {
            let dir = service::erasure::exports_dir(&app);
            service::create_private_dir(&dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            let staging = dir.join(format!("new-{}", crate::domain::reference::token()));
            (staging, Some(dir))
        }
    };
    let req = crate::export::ExportRequest {
        from,
        to,
        out: out_path,
        study,
        k,
    };
    let mut out = crate::export::export(&app, &req)
        .await
        .map_err(export_failed)?;
    if let Some(dir) = kept {
        let final_dir = dir.join(&out.export);
        std::fs::rename(&req.out, &final_dir)
            .with_context(|| format!("cannot move the export to {}", final_dir.display()))?;
        out.out = final_dir;
    }
    print(g.json, &out, |o| {
        format!(
            "export {} written to {}: {} rows of {} children in {} families (k {} requested, {} achieved; {} children suppressed)\n",
            o.export,
            o.out.display(),
            o.rows_out,
            o.children_out,
            o.families_out,
            o.k_requested,
            o.k_achieved,
            o.children_suppressed
        )
    })
}

fn export_failed(e: crate::export::ExportError) -> anyhow::Error {
    use crate::export::ExportError;
    match e {
        ExportError::Op(op) => op_failed(op),
        ExportError::Infeasible(_) | ExportError::Codebook(_) => {
            error_out!("{e}");
            Exit(exit::DATAERR).into()
        }
        ExportError::Io { .. } => {
            error_out!("{e}");
            Exit(exit::CANTCREAT).into()
        }
    }
}
