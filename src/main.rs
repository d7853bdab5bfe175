fn main() -> std::process::ExitCode {
    footfall::cli::main()
}
