//! The `fastvision` command line: parse, dispatch, exit code. Everything else is in `cli/`.

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
