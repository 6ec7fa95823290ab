import ArgumentParser
import OCI

/// `runsc delete`: destroy a container and remove its state. A running
/// container is refused unless `--force`, which kills it.
struct DeleteCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "delete", abstract: "Delete a container and its state.")

    @OptionGroup var global: GlobalOptions

    @Flag(name: [.customShort("f"), .long], help: "Kill the container if it is running; succeed if it does not exist.")
    var force = false

    @Argument(help: ArgumentHelp("The container to delete.", valueName: "container-id"))
    var id: String

    func run() throws {
        _ = try global.configure()
        let store = try global.store()
        let containerID = try ContainerID(id)
        if force && !store.exists(containerID) {
            // As runc does: a create that died before writing its state leaves a directory; --force clears it.
            Cgroup.removeRecorded(in: store.directory(for: containerID))
            try? store.remove(containerID)
            return
        }
        let handle = try ContainerHandle.open(id, in: store)
        if !force && handle.isSandboxAlive {
            let status = try handle.currentState().container.status
            if status == .running || status == .paused {
                throw RunscError("cannot delete container \"\(containerID)\": it is \(status.rawValue); stop it first or use --force")
            }
        }
        try handle.destroy()
    }
}
