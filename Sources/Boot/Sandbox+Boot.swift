import Logging
import OCI

extension Sandbox {
    /// Everything `runsc boot` builds before it tells the CLI it is ready.
    public struct Booted: Sendable {
        public let sandbox: Sandbox
        public let server: ControlServer
    }

    /// Builds the container (kernel and init process, not started), claims
    /// its state directory, records this process, and serves the control
    /// socket. On failure nothing is left in the state directory.
    /// With `imagePath`, the kernel is restored from that checkpoint image (no new init process).
    /// `process` is this process (`SandboxProcess.current()`, read before the sandbox left the host's /proc).
    public static func boot(args: LoaderArgs, id: ContainerID, bundle: String, store: ContainerStore,
                            process: SandboxProcess, logger: Logger,
                            restoringFrom imagePath: String? = nil) throws(LoaderError) -> Booted {
        let loader: Loader
        if let imagePath {
            loader = try Loader.restore(image: imagePath, args: args, logger: logger)
        } else {
            loader = try Loader(args: args, logger: logger)
        }
        var state = ContainerState(id: id.rawValue, status: .creating, pid: process.pid, bundle: bundle,
                                   annotations: args.spec.annotations)
        do {
            try store.create(state)
        } catch {
            throw LoaderError("\(error)")
        }
        let directory = store.directory(for: id)
        do {
            try process.write(to: directory)
            state.status = .created
            let sandbox = Sandbox(loader: loader, store: store, state: state, logger: logger)
            let server = try ControlServer(directory: directory, logger: logger) { request, files in
                sandbox.handle(request, files: files)
            }
            do {
                try store.save(state)
            } catch {
                server.stop()
                throw LoaderError("\(error)")
            }
            return Booted(sandbox: sandbox, server: server)
        } catch let error as LoaderError {
            try? store.remove(id)
            throw error
        } catch {
            try? store.remove(id)
            throw LoaderError("cannot serve the control socket: \(error)")
        }
    }
}
