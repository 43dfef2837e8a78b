//! Generates the message types and the gRPC clients and servers of
//! `proto/ncc.proto`, `proto/engine.proto` and `proto/sync.proto`. protox parses the file in pure Rust, so the build
//! needs no `protoc`.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proto_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../proto");
    let ncc = proto_dir.join("ncc.proto");
    let engine = proto_dir.join("engine.proto");
    let sync = proto_dir.join("sync.proto");
    for file in [&ncc, &engine, &sync] {
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

    // Peer sync reuses the engine's override and check state messages.
    // The generator also writes engine.proto's module again, with the
    // extern path, so this run writes to its own directory.
    let sync_dir = PathBuf::from(std::env::var("OUT_DIR")?).join("sync");
    std::fs::create_dir_all(&sync_dir)?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .extern_path(".seesaw.engine.v1", "crate::engine_proto")
        .out_dir(&sync_dir)
        .compile_fds(protox::compile([&sync], [&proto_dir])?)?;
    Ok(())
}
