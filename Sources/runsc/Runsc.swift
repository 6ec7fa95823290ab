import ArgumentParser

/// The root command. Subcommands are listed here and nowhere else: a new one
/// (the hidden `boot` that starts the sandbox process) is one file and one entry.
struct Runsc: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "runsc",
        abstract: "A sandbox runtime for Linux containers, with checkpoint and restore.",
        discussion: """
            Follows the OCI runtime command line (runc, gVisor's runsc). Global options \
            (--root, --log, --debug, --platform) go before or after the subcommand.
            """,
        version: "0.1.0-dev",
        subcommands: [
            RunCommand.self,
            CreateCommand.self,
            StartCommand.self,
            StateCommand.self,
            KillCommand.self,
            DeleteCommand.self,
            ListCommand.self,
            WaitCommand.self,
            CheckpointCommand.self,
            RestoreCommand.self,
            SpecCommand.self,
            StatefileCommand.self,
            ExecCommand.self,
            PsCommand.self,
            PauseCommand.self,
            ResumeCommand.self,
            EventsCommand.self,
            FeaturesCommand.self,
            BootCommand.self,
            InitWaiterCommand.self,
        ])

    @OptionGroup var global: GlobalOptions
}
