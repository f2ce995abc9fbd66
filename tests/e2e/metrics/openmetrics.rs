//! A strict little parser for the OpenMetrics text the gateway serves.

use std::collections::HashMap;

/// One sample: its name and labels.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: HashMap<String, String>,
    pub value: f64,
}

/// A scrape, parsed: every sample, and the declared families.
#[derive(Debug)]
pub struct Scrape {
    pub samples: Vec<Sample>,
    pub types: HashMap<String, String>,
}

impl Scrape {
    /// Sum of the samples of `name` whose labels include all of `want`.
    pub fn sum(&self, name: &str, want: &[(&str, &str)]) -> f64 {
        self.find(name, want).map(|s| s.value).sum()
    }

    pub fn find<'a>(
        &'a self,
        name: &'a str,
        want: &'a [(&str, &str)],
    ) -> impl Iterator<Item = &'a Sample> + 'a {
        self.samples.iter().filter(move |s| {
            s.name == name
                && want
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
    }

    pub fn has(&self, name: &str, want: &[(&str, &str)]) -> bool {
        self.find(name, want).next().is_some()
    }
}

/// A strict parser for the text format: every sample belongs to a family
/// declared with `# TYPE` (and `# HELP`), label values are quoted and
/// escaped, values are floats, and the scrape ends with `# EOF`.
pub fn parse(text: &str) -> Scrape {
    let mut samples = Vec::new();
    let mut types = HashMap::new();
    let mut helps = 0;
    assert!(text.ends_with("# EOF\n"), "no # EOF terminator");
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# ") {
            let mut parts = rest.splitn(3, ' ');
            match (parts.next(), parts.next(), parts.next()) {
                (Some("TYPE"), Some(name), Some(kind)) => {
                    assert!(
                        ["counter", "gauge", "histogram", "info", "unknown"].contains(&kind),
                        "{line}"
                    );
                    types.insert(name.to_owned(), kind.to_owned());
                }
                (Some("HELP"), Some(_), Some(_)) => helps += 1,
                (Some("UNIT"), Some(_), Some(_)) | (Some("EOF"), None, None) => {}
                _ => panic!("bad comment line: {line}"),
            }
            continue;
        }
        let (name, rest) = match line.find(['{', ' ']) {
            Some(i) => line.split_at(i),
            None => panic!("no value: {line}"),
        };
        let mut labels = HashMap::new();
        let value = if let Some(body) = rest.strip_prefix('{') {
            let mut chars = body.chars();
            loop {
                let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
                assert_eq!(chars.next(), Some('"'), "{line}");
                let mut value = String::new();
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => match chars.next() {
                            Some('n') => value.push('\n'),
                            Some(c) => value.push(c),
                            None => panic!("{line}"),
                        },
                        '"' => break,
                        c => value.push(c),
                    }
                }
                labels.insert(key.trim_start_matches(',').to_owned(), value);
                match chars.next() {
                    Some(',') => continue,
                    Some('}') => break,
                    other => panic!("{other:?} in {line}"),
                }
            }
            chars.as_str().trim().to_owned()
        } else {
            rest.trim().to_owned()
        };
        let value: f64 = match value.as_str() {
            "NaN" => f64::NAN,
            "+Inf" => f64::INFINITY,
            v => v.parse().unwrap_or_else(|_| panic!("bad value in {line}")),
        };
        let family = ["_total", "_bucket", "_count", "_sum", "_info"]
            .iter()
            .find_map(|suffix| name.strip_suffix(suffix).filter(|f| types.contains_key(*f)))
            .unwrap_or(name);
        assert!(
            types.contains_key(family),
            "sample {name} has no # TYPE line"
        );
        samples.push(Sample {
            name: name.to_owned(),
            labels,
            value,
        });
    }
    assert_eq!(helps, types.len(), "every family has # HELP");
    Scrape { samples, types }
}
