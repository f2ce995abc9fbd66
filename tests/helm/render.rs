//! A renderer for the small subset of Helm's Go templates the chart in
//! `deploy/helm/switchyard` uses, so CI checks the chart without helm (a Go
//! binary none of our registries ships). Anything outside the subset is a
//! test failure, not a guess: the chart stays within what this renders
//! exactly as helm would.
//!
//! The subset: `{{ .Values.a.b }}`, `{{ .Release.Name }}`,
//! `{{ .Release.Namespace }}`, `{{ .Chart.Name }}`; the pipes `| quote`
//! and `| nindent N`; `toYaml X | nindent N`; `{{ if X }}`,
//! `{{ if not X }}`, `{{ else }}`, `{{ end }}`; `{{-` and `-}}` trim the
//! whitespace before and after, as in Go. Truthiness as in Go: false, 0,
//! null, "" and empty maps and lists are false.

use serde_yaml_ng::Value;

/// What `.Release` and `.Values` hold.
pub struct Context {
    /// `.Release.Name`.
    pub release: String,
    /// `.Release.Namespace`.
    pub namespace: String,
    /// `.Chart.Name`.
    pub chart: String,
    /// `.Values`.
    pub values: Value,
}

enum Node {
    Text(String),
    Out(String),
    If {
        cond: String,
        then: Vec<Node>,
        other: Vec<Node>,
    },
}

/// Renders `template` with `cx`; panics on anything outside the subset.
pub fn render(template: &str, cx: &Context) -> String {
    let tokens = tokenize(template);
    let mut at = 0;
    let nodes = parse(&tokens, &mut at, false);
    assert_eq!(at, tokens.len(), "an `end` without `if`");
    let mut out = String::new();
    emit(&nodes, cx, &mut out);
    out
}

enum Token {
    Text(String),
    Action(String),
}

fn tokenize(mut s: &str) -> Vec<Token> {
    let mut tokens = Vec::new();
    let mut trim_next = false;
    while let Some(open) = s.find("{{") {
        let mut text = s[..open].to_owned();
        if trim_next {
            text = text.trim_start().to_owned();
        }
        let close = s[open..].find("}}").expect("an unclosed {{") + open;
        let mut inner = &s[open + 2..close];
        if let Some(rest) = inner.strip_prefix('-') {
            text = text.trim_end().to_owned();
            inner = rest;
        }
        trim_next = inner.ends_with('-');
        let inner = inner.strip_suffix('-').unwrap_or(inner);
        tokens.push(Token::Text(text));
        tokens.push(Token::Action(inner.trim().to_owned()));
        s = &s[close + 2..];
    }
    tokens.push(Token::Text(
        if trim_next { s.trim_start() } else { s }.to_owned(),
    ));
    tokens
}

fn parse(tokens: &[Token], at: &mut usize, in_if: bool) -> Vec<Node> {
    let mut nodes = Vec::new();
    while *at < tokens.len() {
        match &tokens[*at] {
            Token::Text(t) => nodes.push(Node::Text(t.clone())),
            Token::Action(a) if a == "end" || a == "else" => {
                assert!(in_if, "`{a}` outside an `if`");
                return nodes;
            }
            Token::Action(a) => match a.strip_prefix("if ") {
                Some(cond) => {
                    *at += 1;
                    let then = parse(tokens, at, true);
                    let mut other = Vec::new();
                    if matches!(&tokens[*at], Token::Action(x) if x == "else") {
                        *at += 1;
                        other = parse(tokens, at, true);
                    }
                    assert!(
                        matches!(&tokens[*at], Token::Action(x) if x == "end"),
                        "`if` without `end`"
                    );
                    nodes.push(Node::If {
                        cond: cond.trim().to_owned(),
                        then,
                        other,
                    });
                }
                None => nodes.push(Node::Out(a.clone())),
            },
        }
        *at += 1;
    }
    nodes
}

fn emit(nodes: &[Node], cx: &Context, out: &mut String) {
    for n in nodes {
        match n {
            Node::Text(t) => out.push_str(t),
            Node::Out(p) => out.push_str(&pipeline(p, cx)),
            Node::If { cond, then, other } => {
                let truth = match cond.strip_prefix("not ") {
                    Some(c) => !truthy(&lookup(c.trim(), cx)),
                    None => truthy(&lookup(cond, cx)),
                };
                emit(if truth { then } else { other }, cx, out);
            }
        }
    }
}

fn pipeline(p: &str, cx: &Context) -> String {
    let mut stages = p.split('|').map(str::trim);
    let head = stages.next().unwrap_or_default();
    let mut s = match head.strip_prefix("toYaml ") {
        Some(path) => serde_yaml_ng::to_string(&lookup(path.trim(), cx))
            .expect("toYaml")
            .trim_end_matches('\n')
            .to_owned(),
        None => scalar(&lookup(head, cx), head),
    };
    for stage in stages {
        s = match stage.split_whitespace().collect::<Vec<_>>()[..] {
            ["quote"] => format!("{:?}", s),
            ["nindent", n] => {
                let pad = " ".repeat(n.parse().expect("nindent's width"));
                format!("\n{pad}{}", s.replace('\n', &format!("\n{pad}")))
            }
            _ => panic!("unsupported pipe `{stage}` (see tests/helm/render.rs)"),
        };
    }
    s
}

fn lookup(path: &str, cx: &Context) -> Value {
    let Some(dotted) = path.strip_prefix('.') else {
        panic!("unsupported action `{path}` (see tests/helm/render.rs)");
    };
    let parts: Vec<&str> = dotted.split('.').collect();
    match parts[..] {
        ["Release", "Name"] => Value::String(cx.release.clone()),
        ["Release", "Namespace"] => Value::String(cx.namespace.clone()),
        ["Chart", "Name"] => Value::String(cx.chart.clone()),
        ["Values", ref rest @ ..] => rest
            .iter()
            .try_fold(&cx.values, |v, k| v.get(k))
            .cloned()
            .unwrap_or(Value::Null),
        _ => panic!("unsupported value `{path}` (see tests/helm/render.rs)"),
    }
}

fn scalar(v: &Value, path: &str) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Null => String::new(),
        _ => panic!("`{path}` is not a scalar: use toYaml"),
    }
}

fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64() != Some(0.0),
        Value::String(s) => !s.is_empty(),
        Value::Sequence(s) => !s.is_empty(),
        Value::Mapping(m) => !m.is_empty(),
        Value::Tagged(_) => true,
    }
}
