//! The `pengine` binary: everything lives in the library; see `pengine::cli`.

fn main() {
    pengine::allocator::return_freed_memory();
    std::process::exit(pengine::cli::main());
}
