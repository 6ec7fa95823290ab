import ArgumentParser
import OCI

/// `runsc pause`: stop every process of a running container where it is,
/// without an image; `state` then says "paused".
struct PauseCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pause", abstract: "Suspend every process of a container.")

    @OptionGroup var global: GlobalOptions

    @Argument(help: ArgumentHelp("The container to pause.", valueName: "container-id"))
    var id: String

    func run() throws {
        _ = try global.configure()
        let handle = try ContainerHandle.open(id, in: try global.store())
        _ = try handle.call(.pause, command: "pause")
    }
}

/// `runsc resume`: let a paused container's processes go on.
struct ResumeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "resume", abstract: "Resume a paused container.")

    @OptionGroup var global: GlobalOptions

    @Argument(help: ArgumentHelp("The container to resume.", valueName: "container-id"))
    var id: String

    func run() throws {
        _ = try global.configure()
        let handle = try ContainerHandle.open(id, in: try global.store())
        _ = try handle.call(.resume, command: "resume")
    }
}
