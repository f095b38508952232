//! Property tests over everything that reads untrusted input or writes shell code: the `.escrc`
//! parser, the state variable decoder, the ESC response decoder, the cache entry decoder, and a
//! round trip through each shell encoder. proptest rather than cargo-fuzz: it runs on the
//! stable toolchain as ordinary tests (so CI runs a smoke of every target), and shrinks any
//! failure to a minimal input. Longer runs: `PROPTEST_CASES=200000 cargo test --release fuzz::`.

use std::path::Path;

use proptest::prelude::*;
use serde_json::Value as Json;

use crate::ground::names::VarName;
use crate::inputs::escrc;
use crate::keeping::cache::entry;
use crate::provider::{Resolved, ResolvedVar, Value, projection};
use crate::settings::state::State;
use crate::shell::{Change, Shell};

/// Arbitrary JSON, nested a few levels, with the keys the decoders look for mixed in.
fn json() -> impl Strategy<Value = Json> {
    let key = prop_oneof![
        Just("value".to_string()),
        Just("secret".to_string()),
        Just("properties".to_string()),
        Just("environmentVariables".to_string()),
        Just("files".to_string()),
        Just("exprs".to_string()),
        Just("builtin".to_string()),
        Just("name".to_string()),
        Just("arg".to_string()),
        Just("object".to_string()),
        Just("literal".to_string()),
        Just("fn::open::aws-login".to_string()),
        "[a-zA-Z_]{0,8}",
    ];
    let leaf = prop_oneof![
        Just(Json::Null),
        any::<bool>().prop_map(Json::from),
        any::<i64>().prop_map(Json::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Json::from),
        ".{0,12}".prop_map(Json::from),
    ];
    leaf.prop_recursive(5, 64, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Json::Array),
            prop::collection::btree_map(key.clone(), inner, 0..5)
                .prop_map(|m| Json::Object(m.into_iter().collect())),
        ]
    })
}

/// The inverse of fish's single-quote rules: `\\` and `\'` are escapes, everything else literal.
fn fish_unquote(quoted: &str) -> Option<String> {
    // One word: single-quoted runs and `\XHH` raw bytes, side by side; nothing bare.
    let mut bytes = Vec::new();
    let mut chars = quoted.chars();
    let push = |bytes: &mut Vec<u8>, c: char| {
        bytes.extend_from_slice(c.encode_utf8(&mut [0u8; 4]).as_bytes())
    };
    if quoted.is_empty() {
        return None;
    }
    while let Some(c) = chars.next() {
        match c {
            '\'' => loop {
                match chars.next()? {
                    '\\' => match chars.next()? {
                        e @ ('\\' | '\'') => push(&mut bytes, e),
                        other => {
                            push(&mut bytes, '\\');
                            push(&mut bytes, other);
                        }
                    },
                    '\'' => break,
                    c => push(&mut bytes, c),
                }
            },
            '\\' => {
                if chars.next()? != 'X' {
                    return None;
                }
                let hex: String = [chars.next()?, chars.next()?].iter().collect();
                bytes.push(u8::from_str_radix(&hex, 16).ok()?);
            }
            _ => return None, // bare text would be open to fish's expansions
        }
    }
    String::from_utf8(bytes).ok()
}

/// The inverse of PowerShell's single-quote rules: each of ' ‘ ’ ‚ ‛ doubled stands for one.
fn pwsh_unquote(quoted: &str) -> Option<String> {
    let is_quote = |c: char| matches!(c, '\'' | '\u{2018}' | '\u{2019}' | '\u{201A}' | '\u{201B}');
    let mut chars = quoted.chars().peekable();
    if !is_quote(chars.next()?) {
        return None;
    }
    let mut out = String::new();
    while let Some(c) = chars.next() {
        if is_quote(c) {
            match chars.peek() {
                Some(&next) if is_quote(next) => {
                    chars.next();
                    out.push(c);
                }
                None => return Some(out),
                Some(_) => return None, // the string would end before its end
            }
        } else {
            out.push(c);
        }
    }
    None
}

fn value_of<'a>(line: &'a str, prefix: &str) -> &'a str {
    line.strip_prefix(prefix).unwrap_or_default()
}

proptest! {
    #[test]
    fn escrc_parser_never_panics_on_any_text(text in "(?s).{0,400}") {
        let _ = escrc::parse(Path::new("/p/.escrc"), text.as_bytes());
    }

    #[test]
    fn escrc_parser_never_panics_on_yaml_shaped_text(
        lines in prop::collection::vec("(environment|ttl|open-duration|export|values|aws|region|assume-role|web-identity|role-arn|token-file|duration|  |    |- |[a-z]{1,6}): ?[-a-z0-9/@:. \\[\\]{}'\"!*]{0,20}", 0..12)
    ) {
        let text = lines.join("\n");
        let _ = escrc::parse(Path::new("/p/.escrc"), text.as_bytes());
    }

    #[test]
    fn escrc_parser_never_panics_on_any_bytes(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        let _ = escrc::parse(Path::new("/p/.escrc"), &bytes);
    }

    #[test]
    fn state_decoder_never_panics(text in "(?s).{0,300}") {
        let _ = State::decode(&text);
    }

    #[test]
    fn state_decoder_never_panics_on_valid_base64_of_anything(bytes in prop::collection::vec(any::<u8>(), 0..300), value in json()) {
        use base64::Engine;
        let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let _ = State::decode(&engine.encode(&bytes));
        let _ = State::decode(&engine.encode(value.to_string()));
    }

    #[test]
    fn esc_response_decoder_never_panics(read in json()) {
        let _ = projection::project(&read);
        let _ = projection::aws_login_duration(&read);
        let wrapped = serde_json::json!({"properties": {"environmentVariables": {"value": read.clone()}}, "exprs": read});
        let _ = projection::project(&wrapped);
        let _ = projection::aws_login_duration(&wrapped);
    }

    #[test]
    fn cache_entry_decoder_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        let _ = entry::decode(&bytes);
        let _ = entry::blob_count(&bytes);
        let _ = entry::join(&[bytes.clone(), bytes]);
    }

    #[test]
    fn cache_entries_round_trip(vars in prop::collection::vec(("[A-Z_]{1,12}", "(?s).{0,64}", any::<bool>(), any::<bool>()), 0..8), opened in 0u64..4_000_000_000, ttl in 0u64..100_000) {
        let resolved = Resolved {
            vars: vars.iter().map(|(name, value, secret, file)| ResolvedVar {
                name: name.clone(),
                value: if *file { Value::File(value.clone()) } else { Value::Text(value.clone()) },
                secret: *secret,
                origin: None,
            }).collect(),
            opened_at: std::time::UNIX_EPOCH + std::time::Duration::from_secs(opened),
            expires_at: std::time::UNIX_EPOCH + std::time::Duration::from_secs(opened + ttl),
            from_cache: false,
            warning: None,
            raw: None,
        };
        let blobs = entry::split(&entry::encode(&resolved)).unwrap();
        let back = entry::decode(&entry::join(&blobs).unwrap()).unwrap();
        prop_assert_eq!(back.vars, resolved.vars);
        prop_assert_eq!(back.expires_at, resolved.expires_at);
    }

    #[test]
    fn posix_quoting_round_trips(value in "(?s)[^\0]{0,80}") {
        let name = VarName::parse("V").unwrap();
        let script = Shell::Bash.render(&[Change::Set(name, value.clone())]);
        let quoted = value_of(script.trim_end_matches('\n'), "export V=").trim_end_matches(';');
        prop_assert_eq!(shell_words::split(quoted).unwrap(), vec![value]);
    }

    #[test]
    fn fish_quoting_round_trips(value in "(?s)[^\0]{0,80}") {
        let name = VarName::parse("V").unwrap();
        let script = Shell::Fish.render(&[Change::Set(name, value.clone())]);
        let quoted = value_of(script.trim_end_matches('\n'), "set -gx V ").trim_end_matches(';');
        prop_assert!(quoted.is_ascii(), "{}", quoted);
        prop_assert_eq!(fish_unquote(quoted), Some(value));
    }

    #[test]
    fn powershell_quoting_round_trips(value in "(?s)[^\0]{0,80}") {
        let name = VarName::parse("V").unwrap();
        let script = Shell::Pwsh.render(&[Change::Set(name, value.clone())]);
        let quoted = value_of(script.trim_end_matches('\n'), "${env:V} = ");
        prop_assert_eq!(pwsh_unquote(quoted), Some(value));
    }

    #[test]
    fn json_output_round_trips(value in "(?s).{0,80}") {
        let name = VarName::parse("V").unwrap();
        let script = Shell::Json.render(&[Change::Set(name, value.clone())]);
        let parsed: Json = serde_json::from_str(&script).unwrap();
        prop_assert_eq!(parsed["V"].as_str(), Some(value.as_str()));
    }

    #[test]
    fn durations_and_globs_never_panic(text in "(?s).{0,30}", name in "[A-Za-z_*?!]{0,20}") {
        let _ = crate::ground::duration::parse(&text);
        if crate::ground::glob::check_pattern(&name).is_ok() {
            let _ = crate::ground::glob::ExportFilter::new(vec![name.clone()]).allows(&text);
        }
    }
}
