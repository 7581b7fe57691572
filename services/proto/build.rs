//! Compiles `proto/` into Rust at build time with `protox`, a pure-Rust protobuf
//! compiler, so building chirp needs no `protoc` on the machine or in the image.
//!
//! The compiled descriptors are also written to `OUT_DIR` as one encoded
//! `FileDescriptorSet`: server reflection serves it, so `grpcurl` can call a
//! running service without a copy of the `.proto` files.

use std::path::PathBuf;

use prost::Message;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Read at run time, not with env!(): the compiled build script is shared by every
    // checkout using one target directory, and must read the protos of the one building.
    let proto_root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?).join("../../proto");
    let files = [
        "chirp/tweet/v1/tweet.proto",
        "chirp/graph/v1/graph.proto",
        "chirp/timeline/v1/timeline.proto",
        "chirp/events/v1/events.proto",
    ];
    let descriptors = protox::compile(files, [&proto_root])?;
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(
        out_dir.join("chirp_descriptor.bin"),
        descriptors.encode_to_vec(),
    )?;
    tonic_prost_build::configure().compile_fds(descriptors)?;
    println!("cargo:rerun-if-changed={}", proto_root.display());
    Ok(())
}
