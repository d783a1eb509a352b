//! Decoding the Kubernetes protobuf encoding of the few built-in kinds kubectl creates
//! with its typed clients (`kubectl create namespace|configmap|secret|serviceaccount`
//! send `application/vnd.kubernetes.protobuf`).
//!
//! The envelope is the magic `k8s\0` followed by a `runtime.Unknown` message whose `raw`
//! field holds the typed object. Only request bodies are decoded; responses stay JSON,
//! which these clients accept too. Other kinds in protobuf get `415`.

use base64::Engine as _;
use serde_json::{Map, Value, json};

/// Why a protobuf body could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtobufError {
    /// The bytes are not a well-formed protobuf message of the expected shape.
    #[error("protobuf: {0}")]
    Malformed(&'static str),
    /// The kind is not one this server decodes from protobuf.
    #[error("protobuf is not supported for {0}; send JSON")]
    Unsupported(String),
}

type Result<T> = std::result::Result<T, ProtobufError>;

/// One field of a message: its number and its payload.
enum Field<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
}

struct Reader<'a> {
    data: &'a [u8],
}

impl<'a> Reader<'a> {
    fn varint(&mut self) -> Result<u64> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let (&byte, rest) = self
                .data
                .split_first()
                .ok_or(ProtobufError::Malformed("truncated varint"))?;
            self.data = rest;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(ProtobufError::Malformed("varint too long"))
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if self.data.len() < n {
            return Err(ProtobufError::Malformed("truncated field"));
        }
        let (head, rest) = self.data.split_at(n);
        self.data = rest;
        Ok(head)
    }

    fn next(&mut self) -> Result<Option<(u64, Field<'a>)>> {
        if self.data.is_empty() {
            return Ok(None);
        }
        let key = self.varint()?;
        let field = match key & 7 {
            0 => Field::Varint(self.varint()?),
            1 => Field::Bytes(self.take(8)?),
            2 => {
                let len = usize::try_from(self.varint()?)
                    .map_err(|_| ProtobufError::Malformed("length overflow"))?;
                Field::Bytes(self.take(len)?)
            }
            5 => Field::Bytes(self.take(4)?),
            _ => return Err(ProtobufError::Malformed("unsupported wire type")),
        };
        Ok(Some((key >> 3, field)))
    }
}

fn fields(data: &[u8]) -> Result<Vec<(u64, Field<'_>)>> {
    let mut reader = Reader { data };
    let mut out = Vec::new();
    while let Some(field) = reader.next()? {
        out.push(field);
    }
    Ok(out)
}

fn text(bytes: &[u8]) -> Result<String> {
    String::from_utf8(bytes.to_vec()).map_err(|_| ProtobufError::Malformed("string is not UTF-8"))
}

/// A `map<string, string>` (or bytes, base64-encoded as JSON carries them) entry.
fn map_entry(bytes: &[u8], base64_values: bool) -> Result<(String, Value)> {
    let mut key = String::new();
    let mut value = Value::String(String::new());
    for (number, field) in fields(bytes)? {
        match (number, field) {
            (1, Field::Bytes(b)) => key = text(b)?,
            (2, Field::Bytes(b)) if base64_values => {
                value = Value::String(base64::engine::general_purpose::STANDARD.encode(b));
            }
            (2, Field::Bytes(b)) => value = Value::String(text(b)?),
            _ => {}
        }
    }
    Ok((key, value))
}

fn insert_string(map: &mut Map<String, Value>, key: &str, bytes: &[u8]) -> Result<()> {
    let s = text(bytes)?;
    if !s.is_empty() {
        map.insert(key.into(), Value::String(s));
    }
    Ok(())
}

fn insert_entry(map: &mut Map<String, Value>, key: &str, entry: (String, Value)) {
    let target = map.entry(key).or_insert_with(|| json!({}));
    if let Some(target) = target.as_object_mut() {
        target.insert(entry.0, entry.1);
    }
}

fn push(map: &mut Map<String, Value>, key: &str, value: Value) {
    let target = map.entry(key).or_insert_with(|| json!([]));
    if let Some(list) = target.as_array_mut() {
        list.push(value);
    }
}

fn object_meta(bytes: &[u8]) -> Result<Value> {
    let mut meta = Map::new();
    for (number, field) in fields(bytes)? {
        match (number, field) {
            (1, Field::Bytes(b)) => insert_string(&mut meta, "name", b)?,
            (2, Field::Bytes(b)) => insert_string(&mut meta, "generateName", b)?,
            (3, Field::Bytes(b)) => insert_string(&mut meta, "namespace", b)?,
            (5, Field::Bytes(b)) => insert_string(&mut meta, "uid", b)?,
            (6, Field::Bytes(b)) => insert_string(&mut meta, "resourceVersion", b)?,
            (11, Field::Bytes(b)) => insert_entry(&mut meta, "labels", map_entry(b, false)?),
            (12, Field::Bytes(b)) => insert_entry(&mut meta, "annotations", map_entry(b, false)?),
            (13, Field::Bytes(b)) => push(&mut meta, "ownerReferences", owner_reference(b)?),
            (14, Field::Bytes(b)) => push(&mut meta, "finalizers", Value::String(text(b)?)),
            _ => {}
        }
    }
    Ok(Value::Object(meta))
}

fn owner_reference(bytes: &[u8]) -> Result<Value> {
    let mut owner = Map::new();
    for (number, field) in fields(bytes)? {
        match (number, field) {
            (1, Field::Bytes(b)) => insert_string(&mut owner, "kind", b)?,
            (3, Field::Bytes(b)) => insert_string(&mut owner, "name", b)?,
            (4, Field::Bytes(b)) => insert_string(&mut owner, "uid", b)?,
            (5, Field::Bytes(b)) => insert_string(&mut owner, "apiVersion", b)?,
            (6, Field::Varint(v)) => {
                owner.insert("controller".into(), Value::Bool(v != 0));
            }
            (7, Field::Varint(v)) => {
                owner.insert("blockOwnerDeletion".into(), Value::Bool(v != 0));
            }
            _ => {}
        }
    }
    Ok(Value::Object(owner))
}

fn named_list(bytes: &[u8], keys: &[(u64, &str)]) -> Result<Value> {
    let mut item = Map::new();
    for (number, field) in fields(bytes)? {
        if let (Some((_, key)), Field::Bytes(b)) = (keys.iter().find(|(n, _)| *n == number), field)
        {
            insert_string(&mut item, key, b)?;
        }
    }
    Ok(Value::Object(item))
}

fn typed(kind: &str, raw: &[u8]) -> Result<Map<String, Value>> {
    let mut object = Map::new();
    for (number, field) in fields(raw)? {
        match (kind, number, field) {
            (_, 1, Field::Bytes(b)) => {
                object.insert("metadata".into(), object_meta(b)?);
            }
            ("ConfigMap", 2, Field::Bytes(b)) => {
                insert_entry(&mut object, "data", map_entry(b, false)?);
            }
            ("ConfigMap", 3, Field::Bytes(b)) => {
                insert_entry(&mut object, "binaryData", map_entry(b, true)?);
            }
            ("ConfigMap" | "Secret", n, Field::Varint(v))
                if (kind == "ConfigMap" && n == 4) || n == 5 =>
            {
                object.insert("immutable".into(), Value::Bool(v != 0));
            }
            ("Secret", 2, Field::Bytes(b)) => {
                insert_entry(&mut object, "data", map_entry(b, true)?);
            }
            ("Secret", 3, Field::Bytes(b)) => insert_string(&mut object, "type", b)?,
            ("Secret", 4, Field::Bytes(b)) => {
                insert_entry(&mut object, "stringData", map_entry(b, false)?);
            }
            ("Namespace", 2, Field::Bytes(b)) => {
                let mut spec = Map::new();
                for (n, f) in fields(b)? {
                    if let (1, Field::Bytes(s)) = (n, f) {
                        push(&mut spec, "finalizers", Value::String(text(s)?));
                    }
                }
                object.insert("spec".into(), Value::Object(spec));
            }
            ("ServiceAccount", 2, Field::Bytes(b)) => push(
                &mut object,
                "secrets",
                named_list(
                    b,
                    &[
                        (1, "kind"),
                        (2, "namespace"),
                        (3, "name"),
                        (4, "uid"),
                        (5, "apiVersion"),
                    ],
                )?,
            ),
            ("ServiceAccount", 3, Field::Bytes(b)) => push(
                &mut object,
                "imagePullSecrets",
                named_list(b, &[(1, "name")])?,
            ),
            ("ServiceAccount", 4, Field::Varint(v)) => {
                object.insert("automountServiceAccountToken".into(), Value::Bool(v != 0));
            }
            _ => {}
        }
    }
    Ok(object)
}

/// Decodes a protobuf request body into the JSON object it stands for.
pub fn decode(body: &[u8]) -> Result<Value> {
    let envelope = body
        .strip_prefix(b"k8s\0")
        .ok_or(ProtobufError::Malformed("missing k8s envelope"))?;
    let mut api_version = String::new();
    let mut kind = String::new();
    let mut raw: &[u8] = &[];
    for (number, field) in fields(envelope)? {
        match (number, field) {
            (1, Field::Bytes(type_meta)) => {
                for (n, f) in fields(type_meta)? {
                    match (n, f) {
                        (1, Field::Bytes(b)) => api_version = text(b)?,
                        (2, Field::Bytes(b)) => kind = text(b)?,
                        _ => {}
                    }
                }
            }
            (2, Field::Bytes(b)) => raw = b,
            _ => {}
        }
    }
    if api_version != "v1"
        || !matches!(
            kind.as_str(),
            "ConfigMap" | "Secret" | "Namespace" | "ServiceAccount"
        )
    {
        return Err(ProtobufError::Unsupported(format!("{api_version} {kind}")));
    }
    let mut object = typed(&kind, raw)?;
    object.insert("apiVersion".into(), Value::String(api_version));
    object.insert("kind".into(), Value::String(kind));
    Ok(Value::Object(object))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `kubectl create configmap cm --from-literal=a=b --from-literal=c=d` sends.
    const CONFIGMAP: &[u8] = b"k8s\x00\x0a\x0f\x0a\x02v1\x12\x09ConfigMap\x12\x24\x0a\x12\x0a\x02cm\x12\x00\x1a\x00\x22\x00\x2a\x00\x32\x00\x38\x00\x42\x00\x12\x06\x0a\x01a\x12\x01b\x12\x06\x0a\x01c\x12\x01d\x1a\x00\x22\x00";
    /// What `kubectl create secret generic s --from-literal=k=v` sends.
    const SECRET: &[u8] = b"k8s\x00\x0a\x0c\x0a\x02v1\x12\x06Secret\x12\x1d\x0a\x11\x0a\x01s\x12\x00\x1a\x00\x22\x00\x2a\x00\x32\x00\x38\x00\x42\x00\x12\x06\x0a\x01k\x12\x01v\x1a\x00\x1a\x00\x22\x00";
    /// What `kubectl create namespace foo` sends.
    const NAMESPACE: &[u8] = b"k8s\x00\x0a\x0f\x0a\x02v1\x12\x09Namespace\x12\x1b\x0a\x13\x0a\x03foo\x12\x00\x1a\x00\x22\x00\x2a\x00\x32\x00\x38\x00\x42\x00\x12\x00\x1a\x02\x0a\x00\x1a\x00\x22\x00";

    #[test]
    fn decodes_kubectl_configmaps() {
        let object = decode(CONFIGMAP).unwrap();
        assert_eq!(
            object,
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm"}, "data": {"a": "b", "c": "d"}})
        );
    }

    #[test]
    fn decodes_kubectl_secrets_with_base64_data() {
        let object = decode(SECRET).unwrap();
        assert_eq!(object["data"], json!({"k": "dg=="}));
        assert_eq!(object["metadata"]["name"], "s");
    }

    #[test]
    fn decodes_kubectl_namespaces() {
        let object = decode(NAMESPACE).unwrap();
        assert_eq!(object["metadata"]["name"], "foo");
        assert_eq!(object["kind"], "Namespace");
    }

    #[test]
    fn refuses_other_kinds_and_garbage() {
        assert!(matches!(
            decode(b"not protobuf").unwrap_err(),
            ProtobufError::Malformed(_)
        ));
        let deployment = b"k8s\x00\x0a\x15\x0a\x07apps/v1\x12\x0aDeployment\x12\x00";
        assert!(matches!(
            decode(deployment).unwrap_err(),
            ProtobufError::Unsupported(_)
        ));
        assert!(decode(b"k8s\x00\x0a\xff").is_err());
    }
}
