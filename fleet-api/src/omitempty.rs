//! Fleet's Go `omitempty` in serde terms: the `skip_serializing_if` predicates every kind
//! uses.
//!
//! A field Fleet omits when empty must be omitted here too, or a round trip through an
//! apiserver serving Fleet's CRDs would add zeros and `false`s Fleet never writes; one set
//! of predicates keeps every kind's spelling of "empty" the same.

/// `skip_serializing_if` helper: Fleet's `omitempty` on a `bool`.
pub(crate) fn is_false(value: &bool) -> bool {
    !*value
}

/// `skip_serializing_if` helper: Fleet's `omitempty` on an integer.
pub(crate) fn is_zero_i32(value: &i32) -> bool {
    *value == 0
}

/// `skip_serializing_if` helper: Fleet's `omitempty` on an `int64`.
pub(crate) fn is_zero_i64(value: &i64) -> bool {
    *value == 0
}

/// `skip_serializing_if` helper for structs whose default value Fleet omits.
pub(crate) fn is_default<T: Default + PartialEq>(value: &T) -> bool {
    *value == T::default()
}
