//! The `aether` binary: the reusable CLI over every preset this build compiles.

fn main() -> std::process::ExitCode {
    aether_cli::main(aether_presets::all())
}
