//! Generates the message types and the gRPC clients and servers of
//! `proto/ncc.proto` and `proto/engine.proto`. protox parses the file in pure Rust, so the build
//! needs no `protoc`.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proto_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../proto");
    let ncc = proto_dir.join("ncc.proto");
    let engine = proto_dir.join("engine.proto");
    for file in [&ncc, &engine] {
        println!("cargo:rerun-if-changed={}", file.display());
    }

    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(protox::compile([&ncc], [&proto_dir])?)?;

    // The engine's server trait gets a default for every method, which
    // returns UNIMPLEMENTED, so that a method added to engine.proto does
    // not break the build of the engine before the engine serves it.
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .generate_default_stubs(true)
        .compile_fds(protox::compile([&engine], [&proto_dir])?)?;
    Ok(())
}
