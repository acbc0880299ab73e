//! The `pengine` binary: everything lives in the library; see `pengine::cli`.

fn main() {
    std::process::exit(pengine::cli::main());
}
