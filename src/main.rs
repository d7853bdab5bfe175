fn main() -> std::process::ExitCode {
    footfall::memory::return_large_blocks_to_the_os();
    footfall::cli::main()
}
