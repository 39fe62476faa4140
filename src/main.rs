fn main() {
    if std::env::args().nth(1).as_deref() == Some("sandbox-init") {
        hearth::sandbox::sandbox_init_main();
    }
}
