//! The summary: rows of ours against a baseline, and the Markdown table.

pub(crate) use vault_bench::{median, Measurement};

/// A measurement of ours against a baseline over repeats: medians of each,
/// and the median of the per-repeat ratios.
pub(crate) fn entry(
    name: &str,
    unit: &str,
    ours: Vec<f64>,
    theirs: Vec<f64>,
    baseline_name: &str,
    higher_is_better: bool,
    target: Option<f64>,
) -> Measurement {
    let ratios: Vec<f64> = ours
        .iter()
        .zip(&theirs)
        .map(|(o, t)| if higher_is_better { o / t } else { t / o })
        .collect();
    let row = Measurement::higher(name, unit, median(&ours), median(&theirs), baseline_name)
        .with_ratio(median(&ratios));
    match target {
        Some(target) => row.target(target),
        None => row,
    }
}

/// A number for the table: three significant figures, at most.
fn number(value: f64) -> String {
    if !value.is_finite() {
        return "-".to_owned();
    }
    let magnitude = value.abs();
    if magnitude >= 100.0 {
        format!("{value:.0}")
    } else if magnitude >= 10.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.2}")
    }
}

/// A target ratio: whole numbers as written, fractions to two places.
fn target_text(target: f64) -> String {
    if target.fract() == 0.0 {
        format!(">= {target}x")
    } else {
        format!(">= {target:.2}x")
    }
}

/// The summary as a Markdown table, ratios first.
pub(crate) fn table(summary: &[Measurement]) -> String {
    let mut out = String::from(
        "| measurement | ratio | target | met | ours | baseline | unit |\n\
         |---|---|---|---|---|---|---|\n",
    );
    for m in summary {
        let (ratio, target) = (m.ratio, m.target);
        let met = match (ratio, target) {
            (Some(r), Some(t)) if r >= t => "yes",
            (_, Some(_)) => "**no**",
            _ => "",
        };
        let baseline = match (m.baseline, m.baseline_name.as_deref()) {
            (Some(b), Some(name)) => format!("{} ({name})", number(b)),
            _ => String::new(),
        };
        out.push_str(&format!(
            "| {} | {} | {} | {met} | {} | {baseline} | {} |\n",
            m.name,
            ratio.map(|r| format!("{}x", number(r))).unwrap_or_default(),
            target.map(target_text).unwrap_or_default(),
            number(m.ours),
            m.unit,
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_take_medians_and_orient_ratios() {
        let faster = entry(
            "x",
            "pairs/s",
            vec![100.0, 300.0, 200.0],
            vec![10.0, 10.0, 20.0],
            "them",
            true,
            Some(8.0),
        );
        assert_eq!(faster.ours, 200.0);
        assert_eq!(faster.baseline, Some(10.0));
        assert_eq!(faster.ratio, Some(10.0));
        let cheaper = entry("y", "us", vec![50.0], vec![100.0], "budget", false, None);
        assert_eq!(cheaper.ratio, Some(2.0));
        assert_eq!(cheaper.target, None);
    }

    #[test]
    fn table_marks_targets() {
        let rows = [
            entry("a", "u", vec![9.0], vec![1.0], "b", true, Some(8.0)),
            entry("c", "u", vec![7.0], vec![1.0], "b", true, Some(8.0)),
            Measurement::report("d", "us", 1234.5),
        ];
        let text = table(&rows);
        assert!(
            text.contains("| a | 9.00x | >= 8x | yes | 9.00 | 1.00 (b) | u |"),
            "{text}"
        );
        assert!(text.contains("| c | 7.00x | >= 8x | **no** |"), "{text}");
        assert!(text.contains("| d |  |  |  | 1234 |  | us |"), "{text}");
        assert_eq!(target_text(1.0 / 1.5), ">= 0.67x");
    }
}
