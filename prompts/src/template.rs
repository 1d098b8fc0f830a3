//! The template file (`templates/templates.json`, embedded) and placeholder filling.
use std::collections::BTreeMap;
use std::sync::OnceLock;

use serde::Deserialize;

use crate::types::{Family, Part};
use crate::BuildError;

/// Raw text of the embedded template file.
pub const TEMPLATES_JSON: &str = include_str!("../templates/templates.json");

#[derive(Debug, Clone, Deserialize)]
pub struct Templates {
    pub constants: Constants,
    pub families: BTreeMap<String, FamilyTemplates>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Constants {
    pub image_begin: String,
    pub image_slot: String,
    pub image_end: String,
    pub image_system_msg: String,
    pub video_system_msg: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct FamilyTemplates {
    pub notes: String,
    pub system_image: String,
    pub system_video: String,
    /// Text after an item's media blocks (only when it has media).
    pub media_suffix: String,
    /// Text after each support example.
    pub example_separator: String,
    pub tasks: BTreeMap<String, TaskTemplate>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct TaskTemplate {
    pub template: String,
    /// How a support example's answer follows its filled template.
    pub answer: String,
    #[serde(default)]
    pub caption_clause: Option<String>,
    #[serde(default)]
    pub history_turn: Option<String>,
    /// Text before an item's media blocks (only when it shows media).
    #[serde(default)]
    pub media_prefix: Option<String>,
    /// Overrides the family's media suffix.
    #[serde(default)]
    pub media_suffix: Option<String>,
    pub notes: String,
}

/// The parsed embedded templates (parsed once; the file is validated by the crate's tests).
pub fn templates() -> &'static Templates {
    static T: OnceLock<Templates> = OnceLock::new();
    T.get_or_init(|| {
        serde_json::from_str(TEMPLATES_JSON).expect("embedded templates.json is valid (tested)")
    })
}

impl Templates {
    pub fn family(&self, family: Family) -> Result<&FamilyTemplates, BuildError> {
        self.families
            .get(family.key())
            .ok_or_else(|| BuildError::MissingTemplate(family.key().to_owned()))
    }
}

impl FamilyTemplates {
    pub fn task(&self, key: &str) -> Result<&TaskTemplate, BuildError> {
        self.tasks.get(key).ok_or_else(|| BuildError::MissingTemplate(key.to_owned()))
    }
}

/// Placeholder names a template may use.
pub const PLACEHOLDERS: [&str; 6] =
    ["media", "question", "answer", "caption", "caption_clause", "history"];

/// Splits a template into literal text and `{name}` placeholders, in order.
pub fn tokens(template: &str) -> Result<Vec<Token<'_>>, BuildError> {
    let mut out = Vec::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        if open > 0 {
            out.push(Token::Text(&rest[..open]));
        }
        let close = rest[open..]
            .find('}')
            .ok_or_else(|| BuildError::BadTemplate(format!("unclosed '{{' in {template:?}")))?;
        let name = &rest[open + 1..open + close];
        if !PLACEHOLDERS.contains(&name) {
            return Err(BuildError::BadTemplate(format!(
                "unknown placeholder {{{name}}} in {template:?}"
            )));
        }
        out.push(Token::Field(name));
        rest = &rest[open + close + 1..];
    }
    if !rest.is_empty() {
        out.push(Token::Text(rest));
    }
    Ok(out)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Token<'a> {
    Text(&'a str),
    Field(&'a str),
}

/// The parts a placeholder name stands for (`None`: no value).
pub type ValueOf<'a> = dyn FnMut(&str) -> Result<Option<Vec<Part>>, BuildError> + 'a;

/// Fills a template in one pass: each `{name}` is replaced by the parts `value(name)` returns.
/// Text from values is never re-scanned. A placeholder with no value is an error.
pub fn fill(template: &str, value: &mut ValueOf<'_>) -> Result<Vec<Part>, BuildError> {
    let mut parts = Vec::new();
    for tok in tokens(template)? {
        match tok {
            Token::Text(t) => parts.push(Part::Text(t.to_owned())),
            Token::Field(name) => match value(name)? {
                Some(v) => parts.extend(v),
                None => return Err(BuildError::MissingField(name.to_owned())),
            },
        }
    }
    Ok(merge_text(parts))
}

/// Joins adjacent text parts and drops empty ones.
pub fn merge_text(parts: Vec<Part>) -> Vec<Part> {
    let mut out: Vec<Part> = Vec::with_capacity(parts.len());
    for p in parts {
        match (out.last_mut(), p) {
            (_, Part::Text(t)) if t.is_empty() => {}
            (Some(Part::Text(prev)), Part::Text(t)) => prev.push_str(&t),
            (_, p) => out.push(p),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_templates_parse_and_use_known_placeholders() {
        let t: Templates = serde_json::from_str(TEMPLATES_JSON).unwrap();
        assert_eq!(t.families.len(), 2);
        for fam in t.families.values() {
            assert_eq!(fam.tasks.len(), 6);
            for task in fam.tasks.values() {
                for s in [
                    Some(&task.template),
                    Some(&task.answer),
                    task.caption_clause.as_ref(),
                    task.history_turn.as_ref(),
                ]
                .into_iter()
                .flatten()
                {
                    tokens(s).unwrap();
                }
            }
        }
    }

    #[test]
    fn fill_is_single_pass() {
        let parts = fill("a {question} b", &mut |_| Ok(Some(vec![Part::Text("{caption}".into())])))
            .unwrap();
        assert_eq!(parts, vec![Part::Text("a {caption} b".into())]);
    }

    #[test]
    fn unknown_placeholder_is_an_error() {
        assert!(tokens("x {nope}").is_err());
        assert!(tokens("x {media").is_err());
    }
}
