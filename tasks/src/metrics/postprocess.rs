//! Emu's answer and caption post-processing (metrics.md 1.6, emu-model.md 3.6).

/// Short answer rule for VQAv2/OKVQA/VizWiz outputs (Emu's `short_answer`).
pub fn vqa_short_answer(s: &str) -> String {
    let s = cut_at_newline(s);
    let s = cut_at_period_space(s);
    let s = cut_at_double_quote(s);
    let s = cut_at_comma_space(s);
    let s = s.trim_matches(crate::metrics::vqa::normalize::py_isspace).to_lowercase();
    let s = drop_trailing_period(&s);
    let s = strip_prefix_once(s, "it is ");
    let s = strip_prefix_once(s, "it's ");
    let s = strip_prefix_once(s, "a ");
    let s = strip_prefix_once(s, "an ");
    strip_prefix_once(s, "the ").to_owned()
}

/// Caption rule for COCO outputs (Emu's caption post-processing; no whitespace stripping).
pub fn coco_caption(s: &str) -> String {
    let s = cut_at_newline(s);
    let s = cut_at_period_space(s);
    drop_trailing_period(s).to_lowercase()
}

/// `s.split("\n")[0]`: the part before the first newline.
pub fn cut_at_newline(s: &str) -> &str {
    cut_at(s, "\n")
}

/// `s.split(". ")[0]`: the part before the first period + space.
pub fn cut_at_period_space(s: &str) -> &str {
    cut_at(s, ". ")
}

/// `s.split('"')[0]`: the part before the first double quote.
pub fn cut_at_double_quote(s: &str) -> &str {
    cut_at(s, "\"")
}

/// `s.split(", ")[0]`: the part before the first comma + space.
pub fn cut_at_comma_space(s: &str) -> &str {
    cut_at(s, ", ")
}

fn cut_at<'a>(s: &'a str, sep: &str) -> &'a str {
    s.split_once(sep).map_or(s, |(head, _)| head)
}

/// `if s and s[-1] == ".": s = s[:-1]`: drops one trailing period.
pub fn drop_trailing_period(s: &str) -> &str {
    s.strip_suffix('.').unwrap_or(s)
}

/// `if s.startswith(prefix): s = s[len(prefix):]`: removes the prefix once.
pub fn strip_prefix_once<'a>(s: &'a str, prefix: &str) -> &'a str {
    s.strip_prefix(prefix).unwrap_or(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    #[test]
    fn cuts() {
        assert_eq!(cut_at_newline("a\nb\nc"), "a");
        assert_eq!(cut_at_period_space("mr. smith. yes"), "mr");
        assert_eq!(cut_at_period_space("3.5"), "3.5");
        assert_eq!(cut_at_double_quote("say \"hi\""), "say ");
        assert_eq!(cut_at_comma_space("1,000, 2,000"), "1,000");
    }

    #[test]
    fn trailing_period_and_prefixes() {
        assert_eq!(drop_trailing_period("yes..."), "yes..");
        assert_eq!(drop_trailing_period(""), "");
        assert_eq!(strip_prefix_once("it is it is", "it is "), "it is");
        assert_eq!(strip_prefix_once("thethe", "the "), "thethe");
        assert_eq!(vqa_short_answer("it is a the dog"), "dog");
        assert_eq!(vqa_short_answer("an an apple"), "an apple");
    }

    /// Every case of `golden/vqa/emu_answer_postprocess.json`.
    #[test]
    fn golden_emu_answer_postprocess() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../shared/golden/vqa/emu_answer_postprocess.json"
        );
        let text = std::fs::read_to_string(path).expect("golden file");
        let cases: Vec<Value> = serde_json::from_str(&text).expect("golden json");
        assert!(!cases.is_empty());
        for c in &cases {
            let input = c["input"].as_str().expect("input");
            let want = c["output"].as_str().expect("output");
            let got = match c["kind"].as_str().expect("kind") {
                "vqa_short_answer" => vqa_short_answer(input),
                "coco_caption" => coco_caption(input),
                k => panic!("unknown kind {k}"),
            };
            assert_eq!(got, want, "{:?} on {input:?}", c["kind"]);
        }
    }
}
