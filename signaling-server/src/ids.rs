//! Random identifiers: peer ids, resume tokens and access tokens.

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

/// A new access token (`--token`) for a server made on the spot, such as
/// the desktop app's hosted one: 22 base-62 characters (about 130 bits).
pub fn access_token() -> String {
    Alphanumeric.sample_string(&mut rand::rng(), 22)
}
