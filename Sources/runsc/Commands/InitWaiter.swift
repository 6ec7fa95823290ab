import ArgumentParser
import Boot
import CShim
import OCI

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// `runsc init-waiter` (hidden): the process `--pid-file` names. It waits for
/// the container's init, or with `--process` for a process `runsc exec`
/// started, and exits with its status (the code, or 128+N for signal N), as
/// runc's init or exec'd process would; conmon reaps it and reports that
/// status. A sandbox that goes away without answering makes it exit with
/// `unknownStatus`.
struct InitWaiterCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "init-waiter", abstract: "Wait for a container's init and exit with its status (started by create).",
        shouldDisplay: false)

    @OptionGroup var global: GlobalOptions

    @Option(help: ArgumentHelp("Wait for this process `runsc exec` started instead of init (its PID in the container).",
                               valueName: "pid"))
    var process: Int32?

    @Argument(help: ArgumentHelp("The container.", valueName: "container-id"))
    var id: String

    /// No status came: the sandbox died or could not be asked.
    static let unknownStatus: Int32 = 255

    func run() throws {
        // Its own session, like the sandbox: the caller's terminal signals are not its to take.
        _ = setsid()
        hideHostProcesses()
        let request: ControlRequest = process.map { .waitProcess(pid: $0) } ?? .wait
        guard let store = try? global.store(), let containerID = try? ContainerID(id),
              let response = try? ControlClient(directory: store.directory(for: containerID)).call(request),
              case .exited(let status) = response else {
            Glibc.exit(Self.unknownStatus)
        }
        Glibc.exit(status.shellStatus)
    }

    /// podman's `top` lists the processes it finds in /proc of the PID
    /// file's process's mount namespace (psgo), which would be the host's:
    /// the waiter gets a mount namespace of its own (a slave copy) with an
    /// empty /proc, so `top` shows no host process, as with gVisor's runsc
    /// (`top` with ps(1)'s options runs ps in the container instead).
    private func hideHostProcesses() {
        guard cshim_unshare_namespace("mnt") == 0 else { return }
        _ = mount("none", "/proc", "tmpfs", UInt(MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_RDONLY), "size=0")
    }
}
