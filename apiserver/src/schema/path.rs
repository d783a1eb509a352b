//! Field paths of a schema walk, rendered only when a problem is reported.
//!
//! kube-apiserver writes two dialects: the OpenAPI validator names a map entry
//! `spec.labels.key` (and its messages say `spec.items[0] in body ...`), while list-type and
//! CEL errors use `field.Path`, which writes `spec.labels[key]`. The walk pushes borrowed
//! segments and renders whichever dialect the error needs.

/// One step of a path.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Seg<'a> {
    /// An object property.
    Prop(&'a str),
    /// A key of a map (an `additionalProperties` object).
    Key(&'a str),
    /// An array index.
    Index(usize),
}

/// The segments from the root to the value being looked at.
#[derive(Debug, Default)]
pub(crate) struct Path<'a> {
    segs: Vec<Seg<'a>>,
}

impl<'a> Path<'a> {
    pub(crate) fn push(&mut self, seg: Seg<'a>) {
        self.segs.push(seg);
    }

    pub(crate) fn pop(&mut self) {
        self.segs.pop();
    }

    /// The OpenAPI validator's name of the value: `spec.items[0].labels.key`.
    pub(crate) fn openapi(&self) -> String {
        let mut out = String::new();
        for seg in &self.segs {
            match seg {
                Seg::Prop(name) => {
                    if !out.is_empty() {
                        out.push('.');
                    }
                    out.push_str(name);
                }
                Seg::Key(key) => {
                    out.push('.');
                    out.push_str(key);
                }
                Seg::Index(i) => {
                    out.push('[');
                    out.push_str(&i.to_string());
                    out.push(']');
                }
            }
        }
        out
    }

    /// The `field` of an OpenAPI validation error: as [`Path::openapi`] without the leading
    /// dot kube-apiserver trims.
    pub(crate) fn openapi_field(&self) -> String {
        let name = self.openapi();
        match name.strip_prefix('.') {
            Some(rest) => rest.to_owned(),
            None => name,
        }
    }

    /// The `field.Path` rendering: `spec.items[0].labels[key]`.
    pub(crate) fn field(&self) -> String {
        let mut out = String::new();
        for seg in &self.segs {
            match seg {
                Seg::Prop(name) => {
                    if !out.is_empty() {
                        out.push('.');
                    }
                    out.push_str(name);
                }
                Seg::Key(key) => {
                    out.push('[');
                    out.push_str(key);
                    out.push(']');
                }
                Seg::Index(i) => {
                    out.push('[');
                    out.push_str(&i.to_string());
                    out.push(']');
                }
            }
        }
        out
    }
}

/// Joins a prefix and a relative field path the way `field.Path` would.
pub(crate) fn join_field(prefix: &str, relative: &str) -> String {
    if prefix.is_empty() {
        relative.to_owned()
    } else if relative.is_empty() {
        prefix.to_owned()
    } else if relative.starts_with('[') {
        format!("{prefix}{relative}")
    } else {
        format!("{prefix}.{relative}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_both_dialects() {
        let mut p = Path::default();
        p.push(Seg::Prop("spec"));
        p.push(Seg::Prop("items"));
        p.push(Seg::Index(2));
        p.push(Seg::Prop("labels"));
        p.push(Seg::Key("app"));
        assert_eq!(p.openapi(), "spec.items[2].labels.app");
        assert_eq!(p.field(), "spec.items[2].labels[app]");
        for _ in 0..4 {
            p.pop();
        }
        assert_eq!(p.field(), "spec");
        p.pop();
        assert_eq!(p.openapi(), "");
        p.push(Seg::Key("k"));
        assert_eq!(p.openapi(), ".k");
        assert_eq!(p.openapi_field(), "k");
    }

    #[test]
    fn joins_prefixes() {
        assert_eq!(
            join_field("spec.x", "properties[a].type"),
            "spec.x.properties[a].type"
        );
        assert_eq!(join_field("spec.x", "[0]"), "spec.x[0]");
        assert_eq!(join_field("", "a"), "a");
        assert_eq!(join_field("a", ""), "a");
    }
}
