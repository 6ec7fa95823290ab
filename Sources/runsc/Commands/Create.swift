import ArgumentParser
import Logging
import OCI

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// `runsc create`: set up a container from a bundle without starting its
/// program (`start` does that). The sandbox process it spawns holds the
/// container and outlives this command.
struct CreateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "create", abstract: "Create a container from an OCI bundle without starting it.")

    @OptionGroup var global: GlobalOptions

    @OptionGroup var container: CreateOptions

    func run() throws {
        let logger = try global.configure()
        _ = try CreateCommand.create(global: global, container, logger: logger)
    }

    /// What `create`, `run` and `restore` share: checks, the sandbox, the PID file. Returns the handle of the created container.
    /// With `imagePath`, the sandbox restores the image instead of creating init (`runsc restore`).
    static func create(global: GlobalOptions, _ options: CreateOptions,
                       imagePath: String? = nil, logger: Logger? = nil) throws -> ContainerHandle {
        let (pidFile, rawID) = (options.pidFile, options.id)
        let store = try global.store()
        ContainerHandle.reclaimIfStale(rawID, in: store)
        let id = try CommandSupport.newContainerID(rawID, in: store)
        try CommandSupport.checkPIDFile(pidFile)
        let bundle = try CommandSupport.bundle(options.bundle)
        logger?.debug("starting the sandbox", metadata: ["id": "\(id)", "bundle": "\(bundle.directory)"])
        // runc's rule: a console socket is for a process that asks for a terminal.
        var terminal: Int32?
        if let socket = options.consoleSocket {
            guard bundle.spec.process?.terminal == true else {
                throw RunscError("--console-socket \(socket): the bundle's process does not ask for a terminal (process.terminal)")
            }
            terminal = try ConsoleSocket.sendNewTerminal(to: socket)
        }
        defer { if let terminal { close(terminal) } }
        // The sandbox joins its cgroup by being spawned from inside it (this process moves in and back
        // out), so it and every stub it forks are in it from their first instruction.
        var cgroup: Cgroup?
        let ownCgroups = Cgroup.ownPaths()
        if let cgroupsPath = bundle.spec.linux?.cgroupsPath, !cgroupsPath.isEmpty {
            cgroup = try Cgroup.enter(cgroupsPath, resources: bundle.spec.linux?.resources, systemd: global.systemdCgroup,
                                      own: ownCgroups, logger: logger)
        }
        let pid: Int32
        do {
            defer { if cgroup != nil { Cgroup.leave(to: ownCgroups) } }
            pid = try SandboxLauncher.launch(global: global, store: store, bundle: bundle, id: id, imagePath: imagePath,
                                             saveRestoreEvery: options.debugSaveRestoreEvery, terminal: terminal)
        } catch {
            cgroup?.remove(logger: logger)
            throw error
        }
        if let cgroup {
            logger?.debug("sandbox in its cgroup", metadata: ["id": "\(id)", "paths": "\(cgroup.paths.values.sorted())"])
            do {
                try cgroup.record(in: store.directory(for: id))
            } catch {
                try? ContainerHandle.open(rawID, in: store).destroy()
                cgroup.remove(logger: logger)
                throw error
            }
        }
        logger?.debug("sandbox ready", metadata: ["id": "\(id)", "pid": "\(pid)"])
        let handle = try ContainerHandle.open(rawID, in: store)
        if let pidFile {
            do {
                let waiter = try SandboxLauncher.launchWaiter(global: global, store: store, id: id)
                try CommandSupport.writePIDFile(pidFile, pid: waiter)
            } catch {
                try? handle.destroy()
                throw error
            }
        }
        return handle
    }

    /// `create`, then `start`; a container that does not start is destroyed (`run`, `restore`).
    static func createAndStart(global: GlobalOptions, _ options: CreateOptions, imagePath: String? = nil,
                               command: String, logger: Logger) throws -> ContainerHandle {
        let handle = try create(global: global, options, imagePath: imagePath, logger: logger)
        do {
            _ = try handle.call(.start, command: command)
        } catch {
            try? handle.destroy()
            throw error
        }
        return handle
    }
}

/// The options of `create`, `run` and `restore`.
struct CreateOptions: ParsableArguments {
    @Option(name: [.customShort("b"), .long], help: ArgumentHelp("The bundle directory (default: current directory).", valueName: "dir"))
    var bundle: String?

    @Option(help: ArgumentHelp("Write to this file the PID of a process that exits with the container's init, with its status.", valueName: "file"))
    var pidFile: String?

    @Option(help: ArgumentHelp("For a process with terminal true: a Unix socket to send the new terminal's master to (SCM_RIGHTS), as runc does.",
                               valueName: "path"))
    var consoleSocket: String?

    @Option(name: .customLong("debug-save-restore-every"),
            help: ArgumentHelp("For testing: every N application syscalls, save the kernel to an image, throw it away and restore it from the image.",
                               valueName: "N"))
    var debugSaveRestoreEvery: UInt64?

    @Argument(help: ArgumentHelp("A name for the new container.", valueName: "container-id"))
    var id: String

    func validate() throws {
        if debugSaveRestoreEvery == 0 { throw ValidationError("--debug-save-restore-every must be at least 1") }
    }
}
