//! Argument parsing and dispatch only; everything else lives in the library.

fn main() -> std::process::ExitCode {
    runner::cli::main()
}
