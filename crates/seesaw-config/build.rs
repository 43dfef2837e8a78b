//! Compiles proto/config.proto with protox, so no system protoc is needed,
//! and keeps the descriptor set for the text-format loader.

use std::path::PathBuf;

fn main() {
    let proto_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../proto");
    let proto_file = proto_dir.join("config.proto");
    println!("cargo:rerun-if-changed={}", proto_file.display());

    let descriptors =
        protox::compile([&proto_file], [&proto_dir]).expect("proto/config.proto must compile");

    let out_dir = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let descriptor_path = out_dir.join("config_descriptor.bin");
    std::fs::write(
        &descriptor_path,
        prost::Message::encode_to_vec(&descriptors),
    )
    .expect("write descriptor set");

    prost_build::Config::new()
        .file_descriptor_set_path(&descriptor_path)
        .compile_fds(descriptors)
        .expect("generate Rust code for proto/config.proto");
}
