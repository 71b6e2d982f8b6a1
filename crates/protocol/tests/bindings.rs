//! The TypeScript types in `src-ui/src/protocol/` are generated from these
//! Rust types. This test regenerates them into a scratch directory and fails
//! if the committed files differ; run it with `HUDDLE_BLESS=1` to rewrite them.

#[path = "support/generated.rs"]
mod generated;

use std::path::Path;

use huddle_protocol::codec::RequestId;
use huddle_protocol::model::ServerLimits;
use huddle_protocol::{ClientMessage, ErrorCode, ServerMessage};
use ts_rs::{Config, TS};

fn generate(dir: &Path) {
    let cfg = Config::new().with_out_dir(dir).with_large_int("number");
    ClientMessage::export_all(&cfg).expect("export ClientMessage");
    ServerMessage::export_all(&cfg).expect("export ServerMessage");
    ErrorCode::export_all(&cfg).expect("export ErrorCode");
    ServerLimits::export_all(&cfg).expect("export ServerLimits");
    RequestId::export_all(&cfg).expect("export RequestId");
}

#[test]
fn typescript_bindings_are_current() {
    let committed = generated::manifest_dir().join("../../src-ui/src/protocol");
    generated::check_or_bless(
        &committed,
        generate,
        "HUDDLE_BLESS=1 cargo test -p huddle-protocol --test bindings",
    );
}
