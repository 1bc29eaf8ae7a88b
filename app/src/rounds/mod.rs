//! Filing rounds (第1次, 第2次 … 提訴): who is in a round, each plaintiff's
//! tier and claimed amount with reasons, and the limitation-period warning.
//! So far only the pure rules (`domain`): the tier policy document and its
//! validation, and the deterministic computation. Rounds in the database,
//! freezing, and the filing bundle come next.
pub mod domain;
