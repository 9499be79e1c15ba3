//! Small server-drawn SVG timelines: one line per indicator per child, one dot per
//! recorded check-in. Only numbers and escaped text go in, so the markup is safe to embed.

/// Escapes text for SVG/HTML.
pub fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// A line over `points` (None: not observed at that check-in) on the scale `min..=max`;
/// `label` names it for screen readers.
pub fn timeline(label: &str, points: &[Option<f64>], min: f64, max: f64) -> String {
    const W: f64 = 240.0;
    const H: f64 = 40.0;
    const PAD: f64 = 6.0;
    let span = if max > min { max - min } else { 1.0 };
    let n = points.len().max(2) as f64 - 1.0;
    let xy = |i: usize, v: f64| {
        let x = PAD + (W - 2.0 * PAD) * (i as f64) / n;
        let y = H - PAD - (H - 2.0 * PAD) * ((v.clamp(min, max) - min) / span);
        (x, y)
    };
    let mut path = String::new();
    let mut dots = String::new();
    for (i, p) in points.iter().enumerate() {
        if let Some(v) = p {
            let (x, y) = xy(i, *v);
            path.push_str(&format!(
                "{}{x:.1},{y:.1} ",
                if path.is_empty() { "M" } else { "L" }
            ));
            dots.push_str(&format!(
                "<circle cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"3.5\" fill=\"#154273\"/>"
            ));
        }
    }
    let label = escape(label);
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{W}\" height=\"{H}\" viewBox=\"0 0 {W} {H}\" role=\"img\" aria-label=\"{label}\">\
         <title>{label}</title>\
         <line x1=\"{PAD}\" y1=\"{b}\" x2=\"{r}\" y2=\"{b}\" stroke=\"#6f777b\" stroke-width=\"1\"/>\
         <path d=\"{path}\" fill=\"none\" stroke=\"#154273\" stroke-width=\"2\"/>{dots}</svg>",
        b = H - PAD,
        r = W - PAD,
        path = path.trim_end(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_timeline_has_a_dot_per_observation_and_escapes_its_label() {
        let s = timeline("a<b", &[Some(1.0), None, Some(3.0)], 0.0, 10.0);
        assert_eq!(s.matches("<circle").count(), 2);
        assert!(s.contains("a&lt;b") && !s.contains("a<b"));
    }
}
