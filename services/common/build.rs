//! Compiles `proto/` into Rust at build time with `protox`, a pure-Rust protobuf
//! compiler, so building chirp needs no `protoc` on the machine or in the image.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proto_root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../proto");
    let files = [
        "chirp/tweet/v1/tweet.proto",
        "chirp/graph/v1/graph.proto",
        "chirp/timeline/v1/timeline.proto",
        "chirp/events/v1/events.proto",
    ];
    let descriptors = protox::compile(files, [&proto_root])?;
    tonic_prost_build::configure().compile_fds(descriptors)?;
    println!("cargo:rerun-if-changed={}", proto_root.display());
    Ok(())
}
