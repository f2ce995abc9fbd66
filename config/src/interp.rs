//! `${VAR}` interpolation, so secrets live in the environment and not in the file.
//!
//! It runs on parsed YAML string scalars, never on the raw text: a value can
//! then never inject YAML structure, and a missing variable is reported with
//! the path of the field that asked for it.
//!
//! Forms: `${VAR}`, `${VAR:-default}`, and `$${` for a literal `${`.

use serde_yaml_ng::Value;

use crate::FieldError;

/// Replaces `${VAR}` in every string scalar under `value`, looking variables
/// up with `env`. Returns all fields whose variables were missing or malformed.
pub fn interpolate(
    value: &mut Value,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(), Vec<FieldError>> {
    let mut errors = Vec::new();
    walk(value, &mut String::new(), env, &mut errors);
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

fn walk(
    value: &mut Value,
    path: &mut String,
    env: &dyn Fn(&str) -> Option<String>,
    errors: &mut Vec<FieldError>,
) {
    match value {
        Value::String(s) if s.contains('$') => match expand(s, env) {
            Ok(expanded) => *s = expanded,
            Err(reason) => errors.push(FieldError::new(path.clone(), reason)),
        },
        Value::Sequence(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                walk(item, path, env, errors);
                path.truncate(len);
            }
        }
        Value::Mapping(map) => {
            for (key, item) in map.iter_mut() {
                let len = path.len();
                if !path.is_empty() {
                    path.push('.');
                }
                match key {
                    Value::String(k) => path.push_str(k),
                    other => path.push_str(&format!("{other:?}")),
                }
                walk(item, path, env, errors);
                path.truncate(len);
            }
        }
        Value::Tagged(tagged) => walk(&mut tagged.value, path, env, errors),
        _ => {}
    }
}

/// Expands one string. Pure so it can be tested without touching the process env.
pub fn expand(input: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(input.len());
    let mut rest = input;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos..];
        if let Some(tail) = after.strip_prefix("$${") {
            out.push_str("${");
            rest = tail;
        } else if let Some(tail) = after.strip_prefix("${") {
            let end = tail
                .find('}')
                .ok_or_else(|| format!("unclosed `${{` in {:?}", redact_hint(input)))?;
            let expr = &tail[..end];
            let (name, default) = match expr.split_once(":-") {
                Some((n, d)) => (n, Some(d)),
                None => (expr, None),
            };
            if name.is_empty()
                || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                || name.starts_with(|c: char| c.is_ascii_digit())
            {
                return Err(format!(
                    "`${{{name}}}` is not a valid environment variable name"
                ));
            }
            match (env(name), default) {
                (Some(v), _) => out.push_str(&v),
                (None, Some(d)) => out.push_str(d),
                (None, None) => {
                    return Err(format!(
                        "environment variable {name} is not set (use ${{{name}:-default}} for a default)"
                    ));
                }
            }
            rest = &tail[end + 1..];
        } else {
            out.push('$');
            rest = &after[1..];
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// Error messages show where in the string the problem is, but never more
/// than a short prefix, since the string may hold part of a secret.
fn redact_hint(input: &str) -> String {
    let prefix: String = input.chars().take(12).collect();
    if prefix.len() < input.len() {
        format!("{prefix}...")
    } else {
        prefix
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "KEY" => Some("sk-1".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn expands_variables_defaults_and_escapes() {
        assert_eq!(expand("Bearer ${KEY}", &env).unwrap(), "Bearer sk-1");
        assert_eq!(expand("${NOPE:-fallback}", &env).unwrap(), "fallback");
        assert_eq!(expand("${EMPTY:-x}", &env).unwrap(), "");
        assert_eq!(
            expand("cost $5 and $${KEY}", &env).unwrap(),
            "cost $5 and ${KEY}"
        );
    }

    #[test]
    fn missing_and_malformed_variables_are_errors() {
        assert!(
            expand("${NOPE}", &env)
                .unwrap_err()
                .contains("NOPE is not set")
        );
        assert!(expand("${KEY", &env).unwrap_err().contains("unclosed"));
        assert!(expand("${1X}", &env).unwrap_err().contains("not a valid"));
    }

    #[test]
    fn errors_carry_the_field_path() {
        let mut v: Value =
            serde_yaml_ng::from_str("replicas:\n  - auth:\n      bearer: ${NOPE}\n").unwrap();
        let errs = interpolate(&mut v, &env).unwrap_err();
        assert_eq!(errs[0].path, "replicas[0].auth.bearer");
    }
}
