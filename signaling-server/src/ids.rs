//! Random identifiers: peer ids and resume tokens.

use rand::distr::{Alphanumeric, SampleString};

/// A new peer id: `p_` and 10 base-62 characters (about 60 bits), so ids of
/// departed members are not reused while a room lives.
pub fn peer_id() -> String {
    format!("p_{}", Alphanumeric.sample_string(&mut rand::rng(), 10))
}

/// A new resume token: 32 base-62 characters (about 190 bits), secret.
pub fn resume_token() -> String {
    Alphanumeric.sample_string(&mut rand::rng(), 32)
}
