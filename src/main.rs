//! Argument parsing and dispatch only; everything else lives in the library. The one
//! exception is the exec helper a job's process starts as (`process::exec_helper`): it is
//! picked before anything else, so a job start costs no argument parsing or logging set-up.
#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    let mut args = std::env::args_os();
    if args.nth(1).is_some_and(|a| a == runner::process::EXEC_HELPER_ARG) {
        runner::process::exec_helper(args);
    }
    runner::cli::main()
}
