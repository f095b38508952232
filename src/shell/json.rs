//! JSON for editors and the nushell-style hooks: `{"NAME": "value", "GONE": null}`.

use std::collections::BTreeMap;

use crate::ground::names::VarName;

pub fn render(changes: &BTreeMap<&VarName, Option<&str>>) -> String {
    let object: serde_json::Map<String, serde_json::Value> = changes
        .iter()
        .map(|(name, value)| {
            let value = value.map_or(serde_json::Value::Null, |v| v.into());
            (name.to_string(), value)
        })
        .collect();
    let mut text = serde_json::Value::Object(object).to_string();
    text.push('\n');
    text
}
